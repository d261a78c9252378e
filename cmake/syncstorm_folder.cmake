# syncstorm_folder_library(NAME SOURCES... [COLD FILE...] LINK ...): a folder's library. While a
# folder holds no .cpp yet, it is an INTERFACE library so the tree configures as folders fill in.
# COLD names the files of SOURCES (relative to the folder, or absolute) that are off the load
# path: they are compiled as their own object library (syncstorm_cold_target), whose objects the
# folder's library holds.
function(syncstorm_folder_library name)
  cmake_parse_arguments(F "" "" "SOURCES;COLD;LINK" ${ARGN})
  if(NOT F_SOURCES)
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE ${F_LINK})
    return()
  endif()
  set(hot ${F_SOURCES})
  set(cold)
  foreach(c ${F_COLD})
    get_filename_component(abs ${c} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(REMOVE_ITEM hot ${abs})
    list(APPEND cold ${abs})
  endforeach()
  if(cold)
    add_library(${name}_cold OBJECT ${cold})
    target_link_libraries(${name}_cold PUBLIC ${F_LINK})
    syncstorm_cold_target(${name}_cold)
    list(APPEND hot $<TARGET_OBJECTS:${name}_cold>)
  endif()
  add_library(${name} STATIC ${hot})
  target_link_libraries(${name} PUBLIC ${F_LINK})
endfunction()

# syncstorm_cold_target(TARGET): a target whose every file is off the load path (CLI plumbing,
# validation, reports, fault orchestration, lab set-up). It compiles at -O1 in optimized builds:
# these files hold most of the nlohmann::json/CLI11 template code, where -O2 costs a third more
# compile time and buys nothing measurable; the models, transports, histograms, proxy and syncd
# stay at the build type's level. With SYNCSTORM_UNITY (the default) its files are compiled in
# batches of 8 per translation unit (CMake's UNITY_BUILD): the headers they share (JSON, Asio
# declarations, the spec tree) are parsed and their templates instantiated once per batch
# instead of once per file, which cuts a clean build's compile of these files by about two
# thirds (docs/architecture.md, "Build"). So two cold files of one folder must not define the
# same name in an anonymous namespace.
function(syncstorm_cold_target t)
  target_compile_options(${t} PRIVATE $<$<NOT:$<CONFIG:Debug>>:-O1>)
  if(SYNCSTORM_UNITY)
    set_target_properties(${t} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
    # In a batch, a class declared in a header with a member of a type from one file's anonymous
    # namespace is reported as GCC's subobject-linkage; it is not a header here.
    target_compile_options(${t} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-subobject-linkage>)
  endif()
endfunction()
