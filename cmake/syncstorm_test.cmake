# syncstorm_test(NAME SOURCE LABEL unit|integration [LIBS ...] [TIMEOUT s])
# One GoogleTest executable per test file, registered with CTest under its label.
find_package(GTest REQUIRED)
function(syncstorm_test name source)
  cmake_parse_arguments(T "" "LABEL;TIMEOUT" "LIBS" ${ARGN})
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
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "SYNCSTORM_BIN=$<TARGET_FILE:syncstorm>;SYNCSTORM_SOURCE_DIR=${PROJECT_SOURCE_DIR};SYNCSTORM_BUILD_DIR=${PROJECT_BINARY_DIR}")
endfunction()
