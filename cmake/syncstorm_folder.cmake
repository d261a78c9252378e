# syncstorm_folder_library(NAME SOURCES... LINK ...): a folder's library. While a folder holds
# no .cpp yet, it is an INTERFACE library so the tree configures as folders fill in.
function(syncstorm_folder_library name)
  cmake_parse_arguments(F "" "" "SOURCES;LINK" ${ARGN})
  if(F_SOURCES)
    add_library(${name} STATIC ${F_SOURCES})
    target_link_libraries(${name} PUBLIC ${F_LINK})
  else()
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE ${F_LINK})
  endif()
endfunction()

# syncstorm_cold_sources(FILE...): files off the load path (CLI plumbing, validation, reports,
# fault orchestration, lab set-up) compile at -O1 in optimized builds. They hold most of the
# nlohmann::json/CLI11 template code, where -O2 costs a third more compile time and buys nothing
# measurable; the models, transports, histograms, relay and syncd stay at the build type's level.
function(syncstorm_cold_sources)
  foreach(f ${ARGN})
    set_property(SOURCE ${f} APPEND PROPERTY COMPILE_OPTIONS $<$<NOT:$<CONFIG:Debug>>:-O1>)
  endforeach()
endfunction()
