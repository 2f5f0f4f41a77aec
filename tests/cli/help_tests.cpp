// SPDX-License-Identifier: BSL-1.0
// The file-reflink command's own documentation: --version, help COMMAND,
// COMMAND --help and the man page say the same, for every command the
// command has (found by walking its --help, so a new one is covered), and
// the man page renders.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef FILE_REFLINK_COMMAND
#error "FILE_REFLINK_COMMAND: the path of the built file-reflink command"
#endif
#ifndef FILE_REFLINK_MAN_PAGE
#error "FILE_REFLINK_MAN_PAGE: the path of the generated man page"
#endif
#ifndef FILE_REFLINK_SOURCE_DIR
#error "FILE_REFLINK_SOURCE_DIR: the project's source directory"
#endif

extern char** environ;

namespace {

struct output {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

//! Run `program` with `args`, its stdout and stderr into files, then read.
output run_program(const std::string& program, const std::vector<std::string>& args) {
  char out_name[] = "/tmp/file-reflink-help-out.XXXXXX", err_name[] = "/tmp/file-reflink-help-err.XXXXXX";
  int out_fd = ::mkstemp(out_name), err_fd = ::mkstemp(err_name);
  REQUIRE(out_fd >= 0);
  REQUIRE(err_fd >= 0);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  ::posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  std::vector<char*> argv{const_cast<char*>(program.c_str())};
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  int spawned = ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  output r;
  if (spawned == 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
    }
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ::close(out_fd), ::close(err_fd);
  r.out = slurp(out_name), r.err = slurp(err_name);
  ::unlink(out_name), ::unlink(err_name);
  return r;
}

output run(const std::vector<std::string>& args) { return run_program(FILE_REFLINK_COMMAND, args); }

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

//! Runs of blanks and line ends as one space, none at either end.
std::string collapsed(const std::string& text) {
  std::istringstream in(text);
  std::string out, word;
  while (in >> word) out += (out.empty() ? "" : " ") + word;
  return out;
}

//! The text a roff fragment shows: requests without arguments dropped, the
//! macro names of the others, font changes and escapes undone.
std::string roff_text(const std::string& roff) {
  std::istringstream in(roff);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(".\\\"", 0) == 0) continue;  // a comment
    if (!line.empty() && line[0] == '.') {
      std::size_t sp = line.find(' ');
      if (sp == std::string::npos) continue;  // .PP, .TP, .br, .nf...
      line = line.substr(sp + 1);
      if (line.size() >= 2 && line.front() == '"' && line.back() == '"') line = line.substr(1, line.size() - 2);
    }
    std::string text;
    for (std::size_t k = 0; k < line.size(); ++k) {
      if (line[k] != '\\' || k + 1 == line.size()) {
        text += line[k];
        continue;
      }
      char e = line[++k];
      if (e == '-') text += '-';
      else if (e == 'e') text += '\\';
      else if (e == '&') continue;
      else if (e == 'f' && k + 1 < line.size()) ++k;  // \fB \fI \fR
      else text += std::string("\\") + e;
    }
    out += text + "\n";
  }
  return collapsed(out);
}

//! The command names listed under "Commands:" in a help text.
std::vector<std::string> listed_commands(const std::string& help) {
  std::istringstream in(help);
  std::vector<std::string> out;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "Commands:") {
      inside = true;
    } else if (line.empty() || line[0] != ' ') {
      inside = false;
    } else if (inside && line.size() > 2 && line[2] != ' ') {
      out.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return out;
}

//! The options ("--size", "-q") a help text lists under "Options:".
std::set<std::string> listed_options(const std::string& help) {
  std::istringstream in(help);
  std::set<std::string> out;
  bool inside = false;
  static const std::regex option(R"((^|[ ,])(--?[a-z][a-z0-9-]*))");
  for (std::string line; std::getline(in, line);) {
    if (line == "Options:") {
      inside = true;
    } else if (line.empty() || line[0] != ' ') {
      inside = false;
    } else if (inside && line.size() > 2 && line[2] == '-') {
      std::string names = line.substr(2, line.find("  ", 2) - 2);
      for (std::sregex_iterator m(names.begin(), names.end(), option), end; m != end; ++m) out.insert((*m)[2]);
    }
  }
  return out;
}

//! Every command below the top, as the words that name it, found by
//! walking the --help of each.
std::vector<std::vector<std::string>> every_command() {
  std::vector<std::vector<std::string>> found, todo{{}};
  while (!todo.empty()) {
    std::vector<std::string> path = todo.back();
    todo.pop_back();
    std::vector<std::string> args = path;
    args.push_back("--help");
    output r = run(args);
    INFO("file-reflink " << joined(args) << "\nstderr: " << r.err);
    REQUIRE(r.status == 0);
    for (const std::string& name : listed_commands(r.out)) {
      std::vector<std::string> sub = path;
      sub.push_back(name);
      found.push_back(sub);
      todo.push_back(sub);
    }
  }
  return found;
}

//! The roff of the man page's section (.SS) for `command`, up to the next
//! section or subsection; empty if it has none.
std::string man_section(const std::string& man, const std::string& command) {
  std::istringstream in(man);
  std::string out;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    bool heading = line.rfind(".SS ", 0) == 0 || line.rfind(".SH ", 0) == 0;
    if (heading && inside) break;
    if (inside) out += line + "\n";
    if (line.rfind(".SS ", 0) == 0 && roff_text(line) == command) inside = true;
  }
  return out;
}

std::vector<std::string> man_subsections(const std::string& man) {
  std::istringstream in(man);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (line.rfind(".SS ", 0) == 0) out.push_back(roff_text(line));
  return out;
}

}  // namespace

TEST_CASE("cli help: --version prints the version of version.hpp") {
  std::smatch m;
  const std::string header = slurp(FILE_REFLINK_SOURCE_DIR "/include/file_reflink/version.hpp");
  REQUIRE(std::regex_search(header, m, std::regex(R"re(version_string = "([^"]+)")re")));
  const std::string version = m[1];
  output r = run({"--version"});
  CHECK(r.status == 0);
  CHECK(r.out == "file-reflink " + version + "\n");
  CHECK(r.err.empty());
  r = run({"--version", "--json"});
  CHECK(r.status == 0);
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["version"] == version);
}

TEST_CASE("cli help: help COMMAND is COMMAND --help and the man page's section, for every command") {
  const std::string man = slurp(FILE_REFLINK_MAN_PAGE);
  REQUIRE_FALSE(man.empty());
  const auto commands = every_command();
  // The ones every pool administrator needs at least, and help itself.
  std::set<std::string> names;
  for (auto& c : commands) names.insert(joined(c));
  for (const char* c : {"pool init", "volume create", "volume import", "volume start", "volume stop", "help"})
    CHECK_MESSAGE(names.count(c), c);
  // Each section of the man page is a command, and each command has one.
  std::set<std::string> sections;
  for (auto& s : man_subsections(man)) sections.insert(s);
  CHECK(sections == names);

  for (const auto& command : commands) {
    const std::string name = joined(command);
    INFO("command: " << name);
    std::vector<std::string> help_args{"help"}, dash_args = command;
    help_args.insert(help_args.end(), command.begin(), command.end());
    dash_args.push_back("--help");
    output by_help = run(help_args), by_dash = run(dash_args);
    CHECK(by_help.status == 0);
    CHECK(by_help.err.empty());
    CHECK(by_dash.status == 0);
    CHECK(by_help.out == by_dash.out);
    // It starts with its synopsis: the command's words.
    CHECK(by_help.out.rfind("file-reflink " + name, 0) == 0);
    const std::string section = man_section(man, name);
    REQUIRE_FALSE(section.empty());
    CHECK(roff_text(section) == collapsed(by_help.out));
    for (const std::string& option : listed_options(by_dash.out)) {
      INFO("option: " << option);
      CHECK(by_help.out.find(option) != std::string::npos);
      CHECK(roff_text(section).find(option) != std::string::npos);
    }
  }
}

TEST_CASE("cli help: help alone is the top-level help, help of no command a usage error") {
  output top = run({"--help"}), help = run({"help"});
  CHECK(top.status == 0);
  CHECK(help.status == 0);
  CHECK(help.out == top.out);
  CHECK(listed_commands(top.out) == std::vector<std::string>{"pool", "volume", "help"});
  for (const char* option : {"--quiet", "--verbose", "--wait", "--no-wait", "--version", "--help"})
    CHECK_MESSAGE(listed_options(top.out).count(option), option);

  output bad = run({"help", "volume", "frobnicate"});
  CHECK(bad.status == 2);
  CHECK(bad.out.empty());
  CHECK(bad.err.find("frobnicate") != std::string::npos);
  CHECK(bad.err.find("file-reflink volume") != std::string::npos);
}

TEST_CASE("cli help: the man page has every part and every file of the pool, and renders without warnings") {
  const std::string man = slurp(FILE_REFLINK_MAN_PAGE);
  REQUIRE_FALSE(man.empty());
  for (const char* part : {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "\"EXIT STATUS\"", "FILES",
                           "EXAMPLES", "\"SEE ALSO\""})
    CHECK_MESSAGE(man.find(std::string("\n.SH ") + part + "\n") != std::string::npos, part);
  // The README's table of the files on disk: each is in FILES.
  std::istringstream readme(slurp(FILE_REFLINK_SOURCE_DIR "/README.md"));
  const std::string text = roff_text(man);
  int files = 0;
  bool inside = false;
  for (std::string line; std::getline(readme, line);) {
    if (line.rfind("## ", 0) == 0) inside = line == "## Files on disk";
    if (inside && line.rfind("| `", 0) == 0) {
      std::string file = line.substr(3, line.find('`', 3) - 3);
      CHECK_MESSAGE(text.find(file) != std::string::npos, file);
      ++files;
    }
  }
  CHECK(files >= 8);
  if (run_program("sh", {"-c", "command -v groff"}).status != 0) {
    MESSAGE("groff is not installed: the rendering is not checked");
    return;
  }
  output r = run_program("groff", {"-man", "-ww", "-z", FILE_REFLINK_MAN_PAGE});
  CHECK(r.status == 0);
  CHECK(r.err == "");
  r = run_program("groff", {"-man", "-Tutf8", "-ww", FILE_REFLINK_MAN_PAGE});
  CHECK(r.status == 0);
  CHECK(r.err == "");
  CHECK(r.out.find("volume import") != std::string::npos);
}
