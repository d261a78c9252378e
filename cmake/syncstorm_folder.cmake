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
