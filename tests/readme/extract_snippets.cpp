// SPDX-License-Identifier: BSL-1.0
// Extracts every ```cpp block of README.md into a translation unit of its
// own, wrapped as the HTML comment before the block says, and writes
// snippets.cmake, which the project in tests/readme/snippets builds (and runs
// where the wrapping runs). The conventions are in tests/readme/README.md.
//
//   extract_snippets README.md OUTDIR VERSION
//
// Exits 1, naming the README line, for a block it cannot account for: a C++
// block fenced with another language name, an unknown marker, a marker that
// is not followed by a ```cpp block, or a FetchContent snippet whose GIT_TAG
// is not vVERSION.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct wrapping {
  const char* before;  // written before the block (after the #line)
  const char* after;   // written after it
  bool runs;           // built into a program and run
};

const char* const includes =
    "#include <file_reflink/file_reflink.hpp>\n"
    "#include <file_reflink/testing.hpp>\n"
    "#include <syslog.h>\n"
    "#include <cerrno>\n"
    "#include <cstdint>\n"
    "#include <iostream>\n"
    "#include <string>\n"
    "namespace fr = file_reflink;\n";

// The memory pool a `pool` or `volume` block runs against: a template
// origin (vm-templates/debian/root, 1 MiB, created) is there to start from.
const char* const memory_pool =
    "static fr::pool_config readme_config() {\n"
    "  fr::pool_config cfg;\n"
    "  cfg.name = \"vmpool\";\n"
    "  cfg.dir_path = \"/var/lib/vmpool\";\n"
    "  cfg.revisions_to_keep = 2;\n"
    "  return cfg;\n"
    "}\n";

const char* const memory_main_head =
    "int main() {\n"
    "  try {\n"
    "    fr::Pool<fr::MemoryFsOps> pool(readme_config());\n"
    "    pool.setup().value();\n"
    "    pool.init_volume(fr::volume_config::origin(\"vm-templates/debian/root\", 1 << 20)).value()\n"
    "        .create().value();\n";

const char* const memory_main_tail =
    "  } catch (const std::exception& e) {\n"
    "    std::cerr << \"README snippet failed: \" << e.what() << '\\n';\n"
    "    return 1;\n"
    "  }\n"
    "  return 0;\n"
    "}\n";

std::map<std::string, wrapping> wrappings() {
  static const std::string main_before = std::string(includes) + "int main() {\n";
  static const std::string pool_before =
      std::string(includes) + "template <class Pool>\nvoid readme_snippet(Pool& pool) {\n";
  static const std::string pool_after = std::string("}\n") +
                                        "template void readme_snippet(fr::Pool<fr::LinuxFsOps>&);\n" +
                                        memory_pool + memory_main_head +
                                        "    readme_snippet(pool);\n" + memory_main_tail;
  static const std::string volume_before =
      std::string(includes) + "template <class Volume>\nvoid readme_snippet(Volume& vol) {\n";
  static const std::string volume_after =
      std::string("}\n") + "template void readme_snippet(fr::Volume<fr::LinuxFsOps>&);\n" +
      memory_pool + memory_main_head +
      "    auto vol = pool.init_volume(fr::volume_config::origin(\"appvms/work/private\", 2ull << 30)).value();\n"
      "    vol.create().value();\n"
      "    readme_snippet(vol);\n" +
      memory_main_tail;
  static const std::string cfg_before =
      std::string(includes) + "void readme_snippet(const fr::pool_config& cfg);\n"
                              "void readme_snippet(const fr::pool_config& cfg) {\n";
  return {
      {"tu", {"", "", false}},
      {"program", {"", "", true}},
      {"main", {main_before.c_str(), "}\n", false}},
      {"pool", {pool_before.c_str(), pool_after.c_str(), true}},
      {"volume", {volume_before.c_str(), volume_after.c_str(), true}},
      {"cfg", {cfg_before.c_str(), "}\n", false}},
  };
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// "<!-- snippet: KIND -->" -> KIND; empty if the line is no snippet marker.
std::string snippet_marker(const std::string& line) {
  const std::string open = "<!-- snippet:", close = "-->";
  auto t = trim(line);
  if (t.compare(0, open.size(), open) != 0) return {};
  if (t.size() < open.size() + close.size() || t.compare(t.size() - close.size(), close.size(), close) != 0)
    return "?";
  return trim(t.substr(open.size(), t.size() - open.size() - close.size()));
}

bool is_cpp_alias(const std::string& info) {
  for (const char* a : {"c++", "C++", "cc", "cxx", "hpp", "h", "c", "C"})
    if (info == a) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: extract_snippets README.md OUTDIR VERSION\n";
    return 2;
  }
  const std::string readme = argv[1], outdir = argv[2], version = argv[3];
  std::ifstream in(readme);
  if (!in) {
    std::cerr << readme << ": cannot open\n";
    return 1;
  }
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);

  const auto kinds = wrappings();
  int failures = 0;
  auto fail = [&](std::size_t line, const std::string& what) {
    std::cerr << readme << ":" << line << ": " << what << '\n';
    ++failures;
  };

  std::ostringstream list;
  int count = 0;
  std::string pending;           // the marker waiting for its block
  std::size_t pending_line = 0;  // where it was
  bool fetchcontent_checked = false;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (std::string m = snippet_marker(l); !m.empty()) {
      if (!pending.empty()) fail(pending_line, "snippet marker not followed by a ```cpp block");
      pending = m;
      pending_line = i + 1;
      continue;
    }
    if (l.compare(0, 3, "```") != 0) {
      if (!pending.empty() && !trim(l).empty()) {
        fail(pending_line, "snippet marker not followed by a ```cpp block");
        pending.clear();
      }
      continue;
    }
    // A fenced block: lines[i] opens it, find its end.
    const std::string info = trim(l.substr(3));
    std::size_t end = i + 1;
    while (end < lines.size() && trim(lines[end]) != "```") ++end;
    if (end == lines.size()) {
      fail(i + 1, "fenced block never closed");
      break;
    }
    if (info == "cmake") {
      for (std::size_t k = i + 1; k < end; ++k) {
        auto at = lines[k].find("FetchContent_Declare(");
        if (at == std::string::npos) continue;
        fetchcontent_checked = true;
        if (lines[k].find("GIT_TAG v" + version + ")") == std::string::npos &&
            lines[k].find("GIT_TAG v" + version + " ") == std::string::npos)
          fail(k + 1, "the FetchContent snippet must name GIT_TAG v" + version + " (version.hpp)");
      }
    }
    if (is_cpp_alias(info)) fail(i + 1, "a C++ block is fenced ```cpp (found ```" + info + ")");
    if (info != "cpp") {
      if (!pending.empty()) fail(pending_line, "snippet marker before a ```" + info + " block");
      pending.clear();
      i = end;
      continue;
    }
    std::string kind = pending.empty() ? "tu" : pending;
    pending.clear();
    if (kind == "not-compiled") {
      i = end;
      continue;
    }
    auto w = kinds.find(kind);
    if (w == kinds.end()) {
      fail(i, "unknown snippet kind '" + kind + "'");
      i = end;
      continue;
    }
    ++count;
    const std::string name = "readme_snippet_" + std::to_string(count);
    std::ofstream out(outdir + "/" + name + ".cpp");
    out << "// Generated from " << readme << " line " << i + 1 << " (snippet: " << kind << ").\n"
        << w->second.before << "#line " << i + 2 << " \"README.md\"\n";
    for (std::size_t k = i + 1; k < end; ++k) out << lines[k] << '\n';
    out << w->second.after;
    if (!out) fail(i + 1, "cannot write " + outdir + "/" + name + ".cpp");
    list << "file_reflink_readme_snippet(" << name << ' ' << kind << ' ' << (w->second.runs ? "run" : "compile")
         << ' ' << i + 1 << ")\n";
    i = end;
  }
  if (!pending.empty()) fail(pending_line, "snippet marker not followed by a ```cpp block");
  if (!fetchcontent_checked) fail(1, "no FetchContent_Declare in a ```cmake block");
  if (count == 0) fail(1, "no ```cpp block found");
  std::ofstream(outdir + "/snippets.cmake") << list.str();
  std::cout << count << " C++ snippets extracted from " << readme << '\n';
  return failures == 0 ? 0 : 1;
}
