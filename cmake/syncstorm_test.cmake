# syncstorm_test(NAME SOURCE LABEL unit|integration [LIBS ...] [TIMEOUT s] [NO_CTEST])
# One GoogleTest executable per test file, registered with CTest under its label (NO_CTEST: the
# caller registers its cases itself, with ${syncstorm_test_env}).
find_package(GTest REQUIRED)
set(syncstorm_test_env "SYNCSTORM_BIN=$<TARGET_FILE:syncstorm>;SYNCSTORM_SOURCE_DIR=${PROJECT_SOURCE_DIR};SYNCSTORM_BUILD_DIR=${PROJECT_BINARY_DIR}")
function(syncstorm_test name source)
  cmake_parse_arguments(T "NO_CTEST" "LABEL;TIMEOUT" "LIBS" ${ARGN})
  if(NOT T_LABEL)
    set(T_LABEL unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${source})
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
