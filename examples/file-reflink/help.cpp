// SPDX-License-Identifier: BSL-1.0
#include "help.hpp"

#include "errors.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <sstream>
#include <utility>

namespace file_reflink::cli {

namespace {

// ---- what a command is made of ----------------------------------------------

// Text with marks: bold (literal words the user types), italic (what the
// user replaces), roman. Plain text drops them; roff makes fonts of them.
constexpr char bold = '\x01', italic = '\x02', roman = '\x03';

std::string b(const std::string& s) { return bold + s + roman; }
std::string i(const std::string& s) { return italic + s + roman; }

std::string plain(const std::string& marked) {
  std::string out;
  for (char c : marked)
    if (c != bold && c != italic && c != roman) out += c;
  return out;
}

bool hidden(const CLI::App* a) { return a->get_group().empty(); }
bool hidden(const CLI::Option* o) { return o->get_group().empty(); }
bool operand(const CLI::Option* o) { return o->get_positional() && !o->nonpositional(); }
bool takes_value(const CLI::Option* o) { return o->get_expected_max() > 0 && o->get_type_size_max() > 0; }
bool repeats(const CLI::Option* o) { return o->get_items_expected_max() > 1; }

//! "KIND" of "KIND:{origin,volatile}": the metavariable, without what its
//! validators add.
std::string metavariable(const CLI::Option* o) {
  std::string t = o->get_type_name();
  return t.substr(0, t.find(':'));
}

//! The values a validator allows ("{a,b}" in the type name), if it lists them.
std::vector<std::string> choices(const CLI::Option* o) {
  std::string t = o->get_type_name();
  auto open = t.find(":{"), close = t.rfind('}');
  std::vector<std::string> out;
  if (open == std::string::npos || close == std::string::npos || close < open) return out;
  std::stringstream list(t.substr(open + 2, close - open - 2));
  for (std::string item; std::getline(list, item, ',');) out.push_back(item);
  return out;
}

std::vector<const CLI::Option*> operands_of(const CLI::App& app) {
  return app.get_options([](const CLI::Option* o) { return operand(o) && !hidden(o); });
}

//! Options a user names (not operands), without --help: every command has it.
std::vector<const CLI::Option*> options_of(const CLI::App& app) {
  const CLI::Option* help = app.get_help_ptr();
  return app.get_options([help](const CLI::Option* o) { return !operand(o) && !hidden(o) && o != help; });
}

std::vector<const CLI::App*> subcommands_of(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* a) { return !hidden(a); });
}

//! "file-reflink volume import": the names from the root down.
std::string command_path(const CLI::App& app) {
  std::string p = app.get_name();
  for (const CLI::App* a = app.get_parent(); a; a = a->get_parent()) p = a->get_name() + " " + p;
  return p;
}

std::string option_names(const CLI::Option* o) {
  std::string names;
  for (auto& s : o->get_snames()) names += (names.empty() ? "" : ", ") + b("-" + s);
  for (auto& l : o->get_lnames()) names += (names.empty() ? "" : ", ") + b("--" + l);
  return names;
}

std::string operand_term(const CLI::Option* o) { return i(o->get_name()) + (repeats(o) ? "..." : ""); }

std::string option_term(const CLI::Option* o) {
  std::string t = option_names(o);
  if (takes_value(o)) t += " " + i(metavariable(o));
  return t;
}

//! "-q" or "--wait SECONDS" in a synopsis: the shortest name.
std::string option_usage(const CLI::Option* o) {
  std::string name = o->get_lnames().empty() ? "-" + o->get_snames().front() : "--" + o->get_lnames().front();
  std::string u = b(name);
  if (takes_value(o)) u += " " + i(metavariable(o));
  return o->get_required() ? u : "[" + u + "]";
}

std::string synopsis(const CLI::App& app) {
  std::string s = b(command_path(app));
  for (const CLI::Option* o : options_of(app)) s += " " + option_usage(o);
  if (!subcommands_of(app).empty()) s += " " + i("COMMAND") + " ...";
  for (const CLI::Option* o : operands_of(app))
    s += " " + (o->get_required() ? operand_term(o) : "[" + operand_term(o) + "]");
  return s;
}

struct entry {
  std::string term;  //!< marked
  std::string text;
};

struct listing {
  std::string title;
  std::vector<entry> entries;
};

std::string option_text(const CLI::Option* o) {
  std::string t = o->get_description();
  if (!o->get_default_str().empty()) t += " (default: " + o->get_default_str() + ")";
  return t;
}

//! A command's help, as blocks: its synopsis, description and lists.
struct section {
  std::string synopsis;
  std::string description;
  std::vector<listing> lists;
};

section section_of(const CLI::App& app, bool with_help_option) {
  section s{synopsis(app), app.get_description(), {}};
  listing operands{"Operands:", {}}, options{"Options:", {}}, commands{"Commands:", {}};
  for (const CLI::Option* o : operands_of(app)) operands.entries.push_back({operand_term(o), option_text(o)});
  for (const CLI::Option* o : options_of(app)) options.entries.push_back({option_term(o), option_text(o)});
  if (with_help_option && app.get_help_ptr())
    options.entries.push_back({option_term(app.get_help_ptr()), app.get_help_ptr()->get_description()});
  for (const CLI::App* a : subcommands_of(app)) commands.entries.push_back({b(a->get_name()), a->get_description()});
  for (listing* l : {&operands, &options, &commands})
    if (!l->entries.empty()) s.lists.push_back(std::move(*l));
  return s;
}

// ---- plain text ----------------------------------------------------------------

constexpr std::size_t width = 80;

//! `text` filled into lines of `width`, the first starting at column
//! `first`, the others indented by `indent`.
std::string fill(const std::string& text, std::size_t first, std::size_t indent) {
  std::istringstream words(text);
  std::string out, word;
  std::size_t column = first;
  bool line_start = true;
  while (words >> word) {
    if (!line_start && column + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
      line_start = true;
    }
    if (!line_start) out += ' ', ++column;
    out += word;
    column += word.size();
    line_start = false;
  }
  return out;
}

std::string text_of(const section& s) {
  std::string out = fill(plain(s.synopsis), 0, 4) + "\n\n" + fill(s.description, 0, 0) + "\n";
  for (const listing& l : s.lists) {
    out += "\n" + l.title + "\n";
    std::size_t column = 0;
    for (const entry& e : l.entries) column = std::max(column, plain(e.term).size());
    column = std::min<std::size_t>(column + 4, 28);
    for (const entry& e : l.entries) {
      std::string term = "  " + plain(e.term);
      if (term.size() + 2 > column)
        term += "\n" + std::string(column, ' ');
      else
        term += std::string(column - term.size(), ' ');
      out += term + fill(e.text, column, column) + "\n";
    }
  }
  return out;
}

// ---- roff --------------------------------------------------------------------------

//! `marked` as roff: fonts for the marks; backslashes, minus signs and
//! characters beyond ASCII escaped; a line that would start a request
//! guarded.
std::string roff(const std::string& marked) {
  std::string out;
  bool line_start = true;
  for (std::size_t k = 0; k < marked.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(marked[k]);
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    line_start = c == '\n';
    if (c == bold)
      out += "\\fB";
    else if (c == italic)
      out += "\\fI";
    else if (c == roman)
      out += "\\fR";
    else if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else if (c < 0x80)
      out += static_cast<char>(c);
    else {
      // UTF-8 to a \[uXXXX] glyph.
      std::size_t extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
      unsigned cp = c & (0x3f >> extra);
      for (std::size_t n = 0; n < extra && k + 1 < marked.size(); ++n)
        cp = (cp << 6) | (static_cast<unsigned char>(marked[++k]) & 0x3f);
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\[u%04X]", cp);
      out += buf;
    }
  }
  return out;
}

//! Paragraphs (split at blank lines) as roff.
std::string roff_paragraphs(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find("\n\n", start);
    std::string para = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    while (!para.empty() && para.back() == '\n') para.pop_back();
    if (!para.empty()) out += ".PP\n" + roff(para) + "\n";
    if (end == std::string::npos) break;
    start = end + 2;
  }
  return out;
}

std::string roff_of(const section& s) {
  std::string out = ".PP\n" + roff(s.synopsis) + "\n.PP\n" + roff(s.description) + "\n";
  for (const listing& l : s.lists) {
    out += ".PP\n" + roff(l.title) + "\n";
    for (const entry& e : l.entries) out += ".TP\n" + roff(e.term) + "\n" + roff(e.text) + "\n";
  }
  return out;
}

void walk(const CLI::App& app, const std::function<void(const CLI::App&)>& visit) {
  visit(app);
  for (const CLI::App* a : subcommands_of(app)) walk(*a, visit);
}

class formatter : public CLI::FormatterBase {
 public:
  std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode) const override {
    return help_text(*app);
  }
};

}  // namespace

std::string help_text(const CLI::App& app) {
  if (app.get_parent()) return text_of(section_of(app, false));
  std::string out = text_of(section_of(app, true));
  if (!app.get_footer().empty()) out += "\n" + app.get_footer() + "\n";
  return out;
}

std::shared_ptr<CLI::FormatterBase> help_formatter() { return std::make_shared<formatter>(); }

const CLI::App* find_command(const CLI::App& root, const std::vector<std::string>& path, std::string& unknown) {
  const CLI::App* app = &root;
  for (const std::string& name : path) {
    const CLI::App* next = nullptr;
    for (const CLI::App* a : subcommands_of(*app))
      if (a->get_name() == name) next = a;
    if (!next) {
      unknown = name;
      return nullptr;
    }
    app = next;
  }
  return app;
}

result<void> show_help(const CLI::App& root, const std::vector<std::string>& path) {
  std::string unknown;
  const CLI::App* app = find_command(root, path, unknown);
  if (!app) {
    std::string where = root.get_name();
    for (const std::string& w : path) {
      if (w == unknown) break;
      where += " " + w;
    }
    return failure(usage_error("help: '" + where + "' has no command '" + unknown + "' (see " + where + " --help)"));
  }
  std::fputs(help_text(*app).c_str(), stdout);
  return success();
}

std::string man_page(const CLI::App& root, const manual_text& text, const std::string& version) {
  const std::string name = root.get_name();
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](char c) { return c >= 'a' && c <= 'z' ? c - 32 : c; });
  std::string out = ".\\\" Made by " + name + " from its own definition of its commands.\n";
  out += ".TH " + roff(upper) + " 1 \"\" \"" + roff(name + " " + version) + "\" \"User Commands\"\n";
  out += ".ad l\n.nh\n";  // ragged right, no hyphens: option names stay whole
  out += ".SH NAME\n" + roff(name) + " \\- " + roff(text.summary) + "\n";
  out += ".SH SYNOPSIS\n";
  bool first = true;
  walk(root, [&](const CLI::App& a) {
    if (a.get_parent() && subcommands_of(a).empty()) {
      out += (first ? "" : ".br\n") + roff(synopsis(a)) + "\n";
      first = false;
    }
  });
  out += ".SH DESCRIPTION\n" + roff_paragraphs(text.description);
  out += ".SH OPTIONS\n";
  section top = section_of(root, true);
  for (const listing& l : top.lists)
    if (l.title == "Options:")
      for (const entry& e : l.entries) out += ".TP\n" + roff(e.term) + "\n" + roff(e.text) + "\n";
  out += ".SH COMMANDS\n";
  walk(root, [&](const CLI::App& a) {
    if (!a.get_parent()) return;
    std::string path = command_path(a);
    out += ".SS \"" + roff(path.substr(path.find(' ') + 1)) + "\"\n" + roff_of(section_of(a, false));
  });
  out += ".SH \"EXIT STATUS\"\n" + roff_paragraphs(text.exit_status);
  out += ".SH FILES\n";
  out += roff_paragraphs(
      "For a volume with vid V in the pool directory P (the names of the Qubes OS file-reflink driver):");
  const std::pair<const char*, const char*> files[] = {
      {"P/V.img", "The committed (clean) image."},
      {"P/V-dirty.img", "The image a running VM has attached."},
      {"P/V-precache.img", "A clone of the clean image with its mtime, so that the next start is one rename."},
      {"P/V-import.img", "An import in progress."},
      {"P/V.img.N@YYYY-MM-DDTHH:MM:SSZ",
       "Revision N, stamped with the mtime the clean image had when it was superseded."},
      {"P/V.img.N@STAMP.LABEL.pin", "A pin: a hard link that keeps revision N."},
      {"<final name>~<random>", "A temporary file being written."},
      {"P/.file-reflink-pool", "The pool marker, written by pool init."},
      {"P/.file-reflink.lock", "The lock file: its bytes are the volumes' locks."},
      {"P/.file-reflink-catalog", "The catalog of volume configurations."},
      {"P/.file-reflink-volumes.json", "The volume file of an earlier version: converted into the catalog once, "
                                       "then renamed .file-reflink-volumes.json.converted."},
  };
  for (auto& [file, what] : files) out += ".TP\n" + roff(i(file)) + "\n" + roff(what) + "\n";
  out += ".SH EXAMPLES\n";
  out += roff_paragraphs("A pool, a template's root image, and a VM whose root is a snapshot of it:");
  out += ".PP\n.nf\n.RS\n" +
         roff(name + " pool init /var/lib/vmpool --revisions-to-keep 2\n" + name +
              " volume create /var/lib/vmpool vm-templates/debian-12/root --size 20G\n" + name +
              " volume import /var/lib/vmpool vm-templates/debian-12/root debian-12.img\n" + name +
              " volume create /var/lib/vmpool appvms/work/root --kind snapshot --source "
              "vm-templates/debian-12/root\n" +
              name + " volume start /var/lib/vmpool appvms/work/root\n" + name +
              " volume stop /var/lib/vmpool appvms/work/root") +
         "\n.RE\n.fi\n";
  out += roff_paragraphs("Revisions of a volume, and going back to one:");
  out += ".PP\n.nf\n.RS\n" +
         roff(name + " volume revisions /var/lib/vmpool appvms/work/private\n" + name +
              " volume revert /var/lib/vmpool appvms/work/private 7") +
         "\n.RE\n.fi\n";
  out += ".SH \"SEE ALSO\"\n.BR cp (1),\n.BR ioctl_ficlone (2),\n.BR btrfs (5),\n.BR xfs (5),\n.BR losetup (8)\n";
  return out;
}

std::string complete(const CLI::App& root, const std::vector<std::string>& words, const value_lister& values) {
  if (words.empty()) return "words\n";
  const std::string& current = words.back();
  const CLI::App* app = &root;
  std::vector<const CLI::App*> chain{app};  // options of the commands above are accepted too (fallthrough)
  const CLI::Option* pending = nullptr;     // an option whose value is the next word
  std::vector<std::pair<std::string, std::string>> given;  // operands of `app` so far: name, word
  std::size_t operand_index = 0;
  bool only_operands = false;
  auto find_option = [&](const std::string& word) -> const CLI::Option* {
    std::string name = word.substr(0, word.find('='));
    for (auto a = chain.rbegin(); a != chain.rend(); ++a)
      for (const CLI::Option* o : (*a)->get_options([](const CLI::Option* o) { return !operand(o); }))
        for (auto& n : o->get_lnames())
          if (name == "--" + n) return o;
    for (auto a = chain.rbegin(); a != chain.rend(); ++a)
      for (const CLI::Option* o : (*a)->get_options([](const CLI::Option* o) { return !operand(o); }))
        for (auto& n : o->get_snames())
          if (name == "-" + n) return o;
    return nullptr;
  };
  for (std::size_t k = 0; k + 1 < words.size(); ++k) {
    const std::string& w = words[k];
    if (pending) {
      pending = nullptr;
      continue;
    }
    if (!only_operands && w == "--") {
      only_operands = true;
      continue;
    }
    if (!only_operands && w.size() > 1 && w[0] == '-') {
      const CLI::Option* o = find_option(w);
      if (o && takes_value(o) && w.find('=') == std::string::npos) pending = o;
      continue;
    }
    if (given.empty()) {
      std::string unknown;
      if (const CLI::App* sub = find_command(*app, {w}, unknown)) {
        app = sub;
        chain.push_back(app);
        continue;
      }
    }
    auto ops = operands_of(*app);
    if (operand_index < ops.size()) {
      given.emplace_back(ops[operand_index]->get_name(), w);
      if (!repeats(ops[operand_index])) ++operand_index;
    } else {
      return "words\n";  // a word the command does not take: nothing fits after it
    }
  }

  std::vector<std::string> candidates;
  std::string how = "words";
  auto offer = [&](const std::string& kind, const std::string& description) {
    if (kind == "DIR") {
      how = "dirs";
    } else if (kind == "FILE") {
      how = "files";
    } else if (kind == "COMMAND") {
      std::vector<std::string> path;
      for (auto& g : given)
        if (g.first == "COMMAND") path.push_back(g.second);
      std::string unknown;
      if (const CLI::App* a = find_command(root, path, unknown))
        for (const CLI::App* s : subcommands_of(*a)) candidates.push_back(s->get_name());
    } else if (values) {
      std::string dir, vid;
      for (auto& g : given) {
        if (g.first == "DIR") dir = g.second;
        if (g.first == "VID") vid = g.second;
      }
      candidates = values(kind, description, dir, vid);
    }
  };
  if (pending) {
    candidates = choices(pending);
    if (candidates.empty()) offer(metavariable(pending), pending->get_description());
  } else if (!only_operands && !current.empty() && current[0] == '-') {
    for (const CLI::App* a : chain)
      for (const CLI::Option* o : a->get_options([](const CLI::Option* o) { return !operand(o) && !hidden(o); })) {
        for (auto& n : o->get_lnames()) candidates.push_back("--" + n);
        for (auto& n : o->get_snames()) candidates.push_back("-" + n);
      }
  } else if (given.empty() && !subcommands_of(*app).empty()) {
    for (const CLI::App* s : subcommands_of(*app)) candidates.push_back(s->get_name());
  } else {
    auto ops = operands_of(*app);
    if (operand_index < ops.size()) offer(ops[operand_index]->get_name(), ops[operand_index]->get_description());
  }
  std::string out = how + "\n";
  if (how == "words")
    for (const std::string& c : candidates)
      if (c.compare(0, current.size(), current) == 0) out += c + "\n";
  return out;
}

}  // namespace file_reflink::cli
