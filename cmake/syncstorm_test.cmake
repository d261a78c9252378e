# syncstorm_test(NAME SOURCE LABEL unit|integration [LIBS ...] [BUILTINS] [TIMEOUT s] [NO_CTEST])
# One GoogleTest executable per test file, linking the libraries it uses (LIBS), registered with
# CTest under its label (NO_CTEST: the caller registers its cases itself, with
# ${syncstorm_test_env}). BUILTINS: the built-in load models and fault kinds are registered before
# any test runs (tests/support/builtins.cpp, which links the engine), for tests that read
# scenarios.
find_package(GTest REQUIRED)
# SYNCSTORM_TEST_BIN: the syncstorm the tests run, when not this build's (the sanitizer job's
# unit tests run build/'s, so build-san/ need not compile the CLI: scripts/sanitize.sh).
set(SYNCSTORM_TEST_BIN "" CACHE FILEPATH "The syncstorm executable the tests run (empty: this build's)")
if(SYNCSTORM_TEST_BIN)
  set(syncstorm_test_bin ${SYNCSTORM_TEST_BIN})
else()
  set(syncstorm_test_bin $<TARGET_FILE:syncstorm>)
endif()
set(syncstorm_test_env "SYNCSTORM_BIN=${syncstorm_test_bin};SYNCSTORM_SOURCE_DIR=${PROJECT_SOURCE_DIR};SYNCSTORM_BUILD_DIR=${PROJECT_BINARY_DIR}")
function(syncstorm_test name source)
  cmake_parse_arguments(T "NO_CTEST;BUILTINS" "LABEL;TIMEOUT" "LIBS" ${ARGN})
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT TARGET syncstorm_test_builtins)
    add_library(syncstorm_test_builtins OBJECT ${PROJECT_SOURCE_DIR}/tests/support/builtins.cpp)
    target_link_libraries(syncstorm_test_builtins PRIVATE syncstorm_engine syncstorm_options)
    target_compile_options(syncstorm_test_builtins PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O0>)
  endif()
  if(T_BUILTINS)
    add_executable(${name} ${source} $<TARGET_OBJECTS:syncstorm_test_builtins>)
    list(APPEND T_LIBS syncstorm_engine)
  else()
    add_executable(${name} ${source})
  endif()
  # Test code is not on any measured path: -O0 halves its compile time (the libraries it
  # links keep their optimization).
  target_compile_options(${name} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O0>)
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main syncstorm_options)
  if(T_NO_CTEST)
    return()
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${syncstorm_test_env}")
endfunction()
