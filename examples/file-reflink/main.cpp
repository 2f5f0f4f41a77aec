// SPDX-License-Identifier: BSL-1.0
//! \file
//! `file-reflink`: administer a pool of VM disk images with the library, the
//! way Qubes users do with qvm-pool and qvm-volume. The arguments (CLI11)
//! pick one command; the command runs; its error becomes one line on stderr
//! and an exit status.
#include "commands.hpp"
#include "complete.hpp"
#include "errors.hpp"
#include "help.hpp"
#include "progress.hpp"

#include <file_reflink/version.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cli = file_reflink::cli;

namespace {

const char* const description =
    "file-reflink: VM disk images as reflinked files in a pool directory (btrfs, XFS with reflink=1; a full-copy\n"
    "fallback elsewhere). Snapshots and commits are instant clones; revisions are kept per volume.";

const char* const summary = "VM disk images as reflinked files in a pool directory";

const char* const footer_text =
    "Sizes: 10G, 512M, 1.5T, 4096 (K, M, G, T are powers of 1024; KB, MB, GB of 1000).\n"
    "The volume configs live in the library's catalog DIR/.file-reflink-catalog (a volume file of an earlier\n"
    "version, DIR/.file-reflink-volumes.json, is converted into it once and renamed *.converted).\n"
    "Each command locks only the volumes it works on, in DIR/.file-reflink.lock, for each step: an export to a\n"
    "slow pipe holds no volume while it copies, and commands on other volumes never wait for it. A command\n"
    "waits for a volume another one holds as long as it takes, unless --wait or --no-wait says otherwise.\n"
    "Ctrl-C (or SIGTERM, SIGHUP, SIGPIPE) cancels a copy, an import or an export and leaves nothing behind.\n";

}  // namespace

int main(int argc, char** argv) {
  cli::install_interrupt_handler();

  CLI::App app(description, "file-reflink");
  app.formatter(cli::help_formatter());  // before the subcommands: they take it over
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.set_version_flag("--version", file_reflink::version_string, "Print the version and exit");
  app.footer(std::string(footer_text) + cli::exit_status_help);
  app.require_subcommand(1);
  app.fallthrough();  // --quiet and --verbose are accepted after the subcommand too
  cli::common_options opts;
  app.add_flag("-q,--quiet", opts.quiet, "No progress bar, no warnings");
  app.add_flag("--json", opts.json,
               "Print what the command did as JSON on stdout (exact bytes, stable keys); an error as one JSON object "
               "on stderr");
  app.add_flag("-v,--verbose", opts.verbose, "Show every file operation (create, clone, copy, rename, remove)");
  std::optional<double> wait_seconds;
  bool no_wait = false;
  CLI::Option* wait_opt =
      app.add_option("--wait", wait_seconds,
                     "Wait at most SECONDS (fractions too: 0.5) for a volume that another command works on; then fail with "
                     "exit status 4")
          ->type_name("SECONDS")
          ->check(CLI::Range(0.0, 1e9));
  app.add_flag("--no-wait", no_wait, "Fail at once (exit status 4) on a volume that another command works on")
      ->excludes(wait_opt);

  std::function<file_reflink::result<void>()> action;
  auto json_flag = [&](CLI::App* c) { c->add_flag("--json", opts.json, "Print JSON (exact bytes) for scripts"); };
  auto dir_arg = [](CLI::App* c, std::string& dir) {
    c->add_option("DIR", dir, "The pool directory")->required();
  };

  // ---- pool ------------------------------------------------------------------
  CLI::App* pool = app.add_subcommand("pool", "Make and inspect a pool")->require_subcommand(1);

  cli::pool_init_args init;
  CLI::App* c = pool->add_subcommand("init", "Make DIR a pool (it must support reflinks, unless --no-setup-check)");
  dir_arg(c, init.dir);
  c->add_option("--revisions-to-keep", init.revisions_to_keep,
                "Revisions its volumes keep by default (default 1; -1: snapshots disabled)")
      ->type_name("N");
  c->add_flag("--no-setup-check", init.no_setup_check,
              "Accept a filesystem without reflinks: every copy is then a full copy");
  json_flag(c);
  c->callback([&] { action = [&] { return cli::pool_init(init, opts); }; });

  std::string pool_dir;
  struct pool_command {
    const char* name;
    const char* help;
    file_reflink::result<void> (*run)(const std::string&, const cli::common_options&);
  };
  for (const pool_command& pc : {
           pool_command{"info", "Filesystem, reflinks, settings and volume count", cli::pool_info},
           pool_command{"du", "Space per volume and per revision: exclusive (freed by removing it) and shared",
                        cli::pool_du},
           pool_command{"scan", "Volumes on disk and their state, and files that belong to no volume", cli::pool_scan},
           pool_command{"recover",
                        "Remove incomplete temporary files and interrupted imports; report running or crashed "
                        "volumes and stale precaches",
                        cli::pool_recover},
           pool_command{"adopt",
                        "Register the volumes on disk that the catalog lacks (a pool the Qubes driver made): "
                        "origins of their image's size, keeping every revision they have",
                        cli::pool_adopt},
       }) {
    c = pool->add_subcommand(pc.name, pc.help);
    dir_arg(c, pool_dir);
    json_flag(c);
    auto run = pc.run;
    c->callback([&, run] { action = [&, run] { return run(pool_dir, opts); }; });
  }

  // ---- volume ----------------------------------------------------------------
  CLI::App* volume = app.add_subcommand("volume", "Make, run, snapshot and inspect volumes")->require_subcommand(1);

  cli::volume_create_args create;
  c = volume->add_subcommand("create", "Make a volume (origin: an empty sparse image of --size, or a copy of --source)");
  dir_arg(c, create.dir);
  c->add_option("VID", create.vid, "The volume id: where its files live in the pool, e.g. appvms/work/private")
      ->required();
  c->add_option("--size", create.size, "Its size (origin, volatile; a snapshot has its source's)")->type_name("SIZE");
  c->add_option("--kind", create.kind,
                "origin (keeps its data, with revisions), volatile (empty at every start), snapshot (a clone of "
                "--source at every start, discarded at stop), origin-snapshot (the same, committed at stop)")
      ->type_name("KIND")
      ->check(CLI::IsMember({"origin", "volatile", "snapshot", "origin-snapshot"}))
      ->capture_default_str();
  json_flag(c);
  c->add_option("--source", create.source,
                "The volume a snapshot clones at start; for an origin, the volume whose data it starts with")
      ->type_name("VID");
  c->add_flag("--read-only", create.read_only, "Attached read-only; resize is refused");
  c->add_option("--revisions-to-keep", create.revisions_to_keep,
                "Revisions kept at commit (default: the pool's; -1: snapshots disabled)")
      ->type_name("N");
  c->callback([&] { action = [&] { return cli::volume_create(create, opts); }; });

  std::string list_dir;
  c = volume->add_subcommand("list", "Every volume: kind, size, state, revisions, source");
  dir_arg(c, list_dir);
  json_flag(c);
  c->callback([&] { action = [&] { return cli::volume_list(list_dir, opts); }; });

  cli::volume_args va;
  struct volume_command {
    const char* name;
    const char* help;
    file_reflink::result<void> (*run)(const cli::volume_args&, const cli::common_options&);
    const char* operand1;  // name of the first operand, "" if none; a leading '?' makes it optional
    const char* operand1_help;
    const char* operand2;
    const char* operand2_help;
  };
  for (const volume_command& vc : {
           volume_command{"info", "Kind, size, state, image path, space and revisions", cli::volume_info, "", "", "",
                          ""},
           volume_command{"start",
                          "Give the VM its image (printed: the path to attach); a snapshot clones its source",
                          cli::volume_start, "", "", "", ""},
           volume_command{"stop", "Take the image back: commit it as a new revision, or discard it",
                          cli::volume_stop, "", "", "", ""},
           volume_command{"revisions", "Revisions, their labels, and what removing each would free",
                          cli::volume_revisions, "", "", "", ""},
           volume_command{"revert", "Make a revision (default: the newest) the committed image",
                          cli::volume_revert, "?REV", "Revision number or label", "", ""},
           volume_command{"keep", "Pin revision REV under LABEL: rotation never prunes it", cli::volume_keep, "REV",
                          "Revision number", "LABEL", "Letters, digits, _ - . +"},
           volume_command{"drop", "Remove a revision (by number or label) and its pins", cli::volume_drop,
                          "REV", "Revision number or label", "", ""},
           volume_command{"unkeep", "Remove the pin LABEL: its revision stays, and rotates as the others do",
                          cli::volume_unkeep, "LABEL", "The label keep gave it", "", ""},
           volume_command{"set",
                          "Change a setting: revisions_to_keep (-1: snapshots disabled, 0 or more), rw (true or "
                          "false; not while running), source (a vid, or none)",
                          cli::volume_set, "KEY", "revisions_to_keep, rw or source", "VALUE", "The new value"},
           volume_command{"resize", "Grow the image (--shrink: make a stopped volume smaller)", cli::volume_resize,
                          "SIZE", "The new size", "", ""},
           volume_command{"import", "Replace the volume's data with FILE's (- : standard input), as a commit",
                          cli::volume_import, "FILE", "A file, a device, or - for standard input", "", ""},
           volume_command{"export", "Write the committed data to FILE (- : standard output)", cli::volume_export,
                          "FILE", "A file (written with holes), a device, or - for standard output", "", ""},
           volume_command{"send",
                          "Write the committed image as a stream to FILE (default - : standard output): whole, or "
                          "with --since the changes since a revision the receiver holds",
                          cli::volume_send, "?FILE", "A new file, a device or pipe, or - for standard output", "", ""},
           volume_command{"receive",
                          "Apply a stream that volume send wrote, read from FILE (default - : standard input), as a "
                          "commit; a pool without VID gets a new origin volume",
                          cli::volume_receive, "?FILE", "A file, a device or pipe, or - for standard input", "", ""},
           volume_command{"changes",
                          "The byte ranges in which image TO (default: the committed image) differs from image FROM",
                          cli::volume_changes, "FROM", "Revision number or label, or committed", "?TO",
                          "Revision number or label, or committed (the default)"},
           volume_command{"discard", "Punch a hole: LEN bytes at OFF", cli::volume_discard, "OFF", "Offset (a size)",
                          "LEN", "Length (a size)"},
           volume_command{"sparsify", "Punch holes where the committed image holds zeros", cli::volume_sparsify, "",
                          "", "", ""},
           volume_command{"remove", "Remove the volume: every file of it, revisions included", cli::volume_remove,
                          "", "", "", ""},
       }) {
    c = volume->add_subcommand(vc.name, vc.help);
    dir_arg(c, va.dir);
    c->add_option("VID", va.vid, "The volume id")->required();
    std::string op1 = vc.operand1;
    if (!op1.empty()) {
      bool optional = op1.front() == '?';
      auto* o = c->add_option(optional ? op1.substr(1) : op1, va.operand1, vc.operand1_help);
      if (!optional) o->required();
    }
    std::string op2 = vc.operand2;
    if (!op2.empty()) {
      bool optional = op2.front() == '?';
      auto* o = c->add_option(optional ? op2.substr(1) : op2, va.operand2, vc.operand2_help);
      if (!optional) o->required();
    }
    json_flag(c);
    if (std::string(vc.name) == "import") {
      c->add_option("--size", va.size, "Size of the new image (default: FILE's; for a pipe, the volume's)")
          ->type_name("SIZE");
      c->add_flag("--allow-short", va.allow_short,
                  "Accept a pipe that is empty or ends before --size bytes (the rest of the image reads as zeros)");
    }
    if (std::string(vc.name) == "export" || std::string(vc.name) == "send")
      c->add_flag("--force", va.force, "Overwrite FILE if it exists");
    if (std::string(vc.name) == "send")
      c->add_option("--since", va.since,
                    "Send only the changes since revision REV (number or label), which the receiver holds")
          ->type_name("REV");
    if (std::string(vc.name) == "resize") {
      c->add_flag("--force", va.force, "Grow it beyond the size of the pool's whole filesystem");
      c->add_flag("--shrink", va.shrink,
                  "Make a stopped volume smaller: its data beyond SIZE is cut off, and its current image stays as a "
                  "revision (volume revert brings it back)");
    }
    if (std::string(vc.name) == "remove")
      c->add_flag("--force", va.force,
                  "Remove it even while it runs (its VM's unsaved data is lost) or while other volumes start from it");
    auto run = vc.run;
    c->callback([&, run] { action = [&, run] { return run(va, opts); }; });
  }

  // ---- help --------------------------------------------------------------------
  std::vector<std::string> help_topic;
  c = app.add_subcommand("help", "Show a command's help: its section of the man page file-reflink(1), as "
                                 "COMMAND --help does");
  c->add_option("COMMAND", help_topic, "The command, as it is typed: volume import");
  c->callback([&] { action = [&] { return cli::show_help(app, help_topic); }; });

  // Hidden: what the man page and the shell completion are made from.
  const std::string first = argc > 1 ? argv[1] : "";
  if (first == "__man") {  // __man [FILE]
    const std::string page =
        cli::man_page(app, {summary, std::string(description) + "\n\n" + footer_text, cli::exit_status_help},
                      file_reflink::version_string);
    std::FILE* out = argc > 2 ? std::fopen(argv[2], "w") : stdout;
    if (!out || std::fputs(page.c_str(), out) < 0 || (out != stdout && std::fclose(out) != 0)) {
      std::perror(argc > 2 ? argv[2] : "stdout");
      return cli::exit_failed;
    }
    return cli::exit_ok;
  }
  if (first == "__complete") {
    std::fputs(cli::complete(app, std::vector<std::string>(argv + 2, argv + argc), cli::pool_values).c_str(), stdout);
    return cli::exit_ok;
  }

  // An error while parsing is JSON too when --json is among the arguments.
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--json") cli::set_json_errors(true);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForVersion&) {
    // --version --json: the same, for a script.
    bool json = false;
    for (int k = 1; k < argc; ++k) json = json || std::string(argv[k]) == "--json";
    if (json)
      std::printf("{\"version\":\"%s\"}\n", file_reflink::version_string);
    else
      std::printf("file-reflink %s\n", file_reflink::version_string);
    return cli::exit_ok;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, and the usage status whatever CLI11's own code would be.
    cli::print_error(cli::usage_error(std::string(e.what()) + " (see --help)"), {});
    return cli::exit_usage;
  }
  if (!action) return cli::exit_usage;
  cli::set_json_errors(opts.json);
  // What the command works on, for its error: "volume import", the vid, the pool.
  cli::error_subject subject;
  for (CLI::App* level = &app; !level->get_subcommands().empty();) {
    level = level->get_subcommands().front();
    subject.operation += (subject.operation.empty() ? "" : " ") + level->get_name();
  }
  for (const std::string* d : {&init.dir, &pool_dir, &create.dir, &list_dir, &va.dir})
    if (!d->empty()) subject.path = cli::pool_path(*d).string();
  for (const std::string* v : {&create.vid, &va.vid})
    if (!v->empty()) subject.vid = *v;
  if (no_wait) {
    opts.lock_timeout = std::chrono::milliseconds(0);
  } else if (wait_seconds) {
    // Rounded up: --wait 0.0001 still waits a little, unlike --no-wait.
    opts.lock_timeout = std::chrono::ceil<std::chrono::milliseconds>(std::chrono::duration<double>(*wait_seconds));
  }
  try {
    auto r = action();
    if (!r) {
      cli::print_error(r.error(), subject);
      return cli::exit_status_of(r.error());
    }
  } catch (const std::exception& e) {
    // Only allocation failure and the like get here: the library and the
    // commands report expected failures as errors.
    cli::print_error(file_reflink::error(std::make_error_code(std::errc::not_enough_memory), e.what()), subject);
    return cli::exit_failed;
  }
  cli::flush_kept_messages();
  return cli::exit_ok;
}
