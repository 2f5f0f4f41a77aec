# SPDX-License-Identifier: BSL-1.0
# extract_snippets refuses a README whose blocks it cannot account for, and
# names the line: run with -DEXTRACT=... -DWORK=...
set(fetch "```cmake\nFetchContent_Declare(x GIT_REPOSITORY u GIT_TAG v1.2.3)\n```\n")
set(cases
  "c++|${fetch}```c++\nint x\n```\n|:4: a C++ block is fenced ```cpp (found ```c++)"
  "kind|${fetch}<!-- snippet: whatever -->\n```cpp\nint x\n```\n|:4: unknown snippet kind 'whatever'"
  "dangling|${fetch}<!-- snippet: main -->\n\ntext\n```cpp\nint x\n```\n|:4: snippet marker not followed by a ```cpp block"
  "marker-before-sh|${fetch}<!-- snippet: main -->\n```sh\nls\n```\n```cpp\nint x\n```\n|:4: snippet marker before a ```sh block"
  "tag|```cmake\nFetchContent_Declare(x GIT_REPOSITORY u GIT_TAG <tag>)\n```\n```cpp\nint x\n```\n|:2: the FetchContent snippet must name GIT_TAG v1.2.3"
  "unclosed|${fetch}```cpp\nint x\n|:4: fenced block never closed")
foreach(c IN LISTS cases)
  string(REPLACE "|" ";" parts "${c}")
  list(GET parts 0 name)
  list(GET parts 1 text)
  list(GET parts 2 expected)
  file(MAKE_DIRECTORY ${WORK}/${name})
  file(WRITE ${WORK}/${name}/README.md "${text}")
  execute_process(COMMAND ${EXTRACT} ${WORK}/${name}/README.md ${WORK}/${name} 1.2.3
    RESULT_VARIABLE r OUTPUT_QUIET ERROR_VARIABLE err)
  if(r EQUAL 0)
    message(FATAL_ERROR "${name}: accepted")
  endif()
  string(FIND "${err}" "README.md${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${name}: expected '${expected}', got:\n${err}")
  endif()
  message(STATUS "${name}: refused: ${err}")
endforeach()
# The control: a README whose blocks are all accounted for is accepted.
file(MAKE_DIRECTORY ${WORK}/good)
file(WRITE ${WORK}/good/README.md "${fetch}<!-- snippet: main -->\n```cpp\nint x = 0;\n```\n```cpp\nint y;\n```\n")
execute_process(COMMAND ${EXTRACT} ${WORK}/good/README.md ${WORK}/good 1.2.3 RESULT_VARIABLE r ERROR_VARIABLE err)
if(NOT r EQUAL 0)
  message(FATAL_ERROR "good: refused:\n${err}")
endif()
file(READ ${WORK}/good/snippets.cmake list)
if(NOT list STREQUAL "file_reflink_readme_snippet(readme_snippet_1 main compile 5)\nfile_reflink_readme_snippet(readme_snippet_2 tu compile 8)\n")
  message(FATAL_ERROR "good: unexpected list:\n${list}")
endif()
