# SPDX-License-Identifier: BSL-1.0
# cmake -DPREFIX=DIR -DFILES=a|b|c -P installed_files.cmake: fails unless each
# file is installed below PREFIX and is not empty; runs the installed command
# (--version) when it is one of them.
string(REPLACE "|" ";" files "${FILES}")
foreach(file IN LISTS files)
  set(path ${PREFIX}/${file})
  if(NOT EXISTS ${path})
    message(FATAL_ERROR "not installed: ${path}")
  endif()
  file(SIZE ${path} size)
  if(size EQUAL 0)
    message(FATAL_ERROR "installed empty: ${path}")
  endif()
  get_filename_component(name ${path} NAME)
  if(name STREQUAL "file-reflink" AND file MATCHES "bin/")
    execute_process(COMMAND ${path} --version RESULT_VARIABLE status OUTPUT_VARIABLE out)
    if(NOT status EQUAL 0 OR NOT out MATCHES "^file-reflink [0-9]+\\.[0-9]+\\.[0-9]+\n$")
      message(FATAL_ERROR "${path} --version: status ${status}, output '${out}'")
    endif()
  endif()
  message(STATUS "installed: ${path}")
endforeach()
