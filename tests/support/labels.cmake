# SPDX-License-Identifier: BSL-1.0
# Run by ctest after the doctest discovery scripts (TEST_INCLUDE_FILES):
# label every discovered test by its fixture, read from the end of its name.
# doctest_discover_tests sets LABELS itself (empty without ADD_LABELS), so
# this has to come after it.
# A subdirectory with a test executable of its own discovers its tests into a
# list named FILE_REFLINK_<PART>_TESTS and appends this file to its own
# directory's TEST_INCLUDE_FILES; every such list is labelled here.
set(file_reflink_all_tests ${FILE_REFLINK_TESTS} ${FILE_REFLINK_TESTS_CXX20} ${FILE_REFLINK_CLI_TESTS}
    ${FILE_REFLINK_RELIABILITY_TESTS} ${FILE_REFLINK_MODEL_TESTS} ${FILE_REFLINK_DIFFERENTIAL_TESTS}
    ${FILE_REFLINK_MULTIPROCESS_TESTS} ${FILE_REFLINK_BENCH_TESTS} ${FILE_REFLINK_SEND_RECEIVE_TESTS})
foreach(file_reflink_test IN LISTS file_reflink_all_tests)
  if(file_reflink_test MATCHES "<memory>$")
    set(file_reflink_label memory)
  elseif(file_reflink_test MATCHES "<btrfs>$")
    set(file_reflink_label btrfs)
  elseif(file_reflink_test MATCHES "<xfs>$")
    set(file_reflink_label xfs)
  elseif(file_reflink_test MATCHES "<btrfs-forwarded>$")
    set(file_reflink_label "btrfs;forwarded")
  elseif(file_reflink_test MATCHES "<ext4>$")
    set(file_reflink_label ext4)
  elseif(file_reflink_test MATCHES "<tmpdir>$")
    set(file_reflink_label cli)
  else()
    set(file_reflink_label unit)
  endif()
  set_tests_properties("${file_reflink_test}" PROPERTIES LABELS "${file_reflink_label}")
endforeach()
