# CMake toolchain file of the npas arm64 target: aarch64 Linux through Debian's cross compiler
# (apt-get install g++-aarch64-linux-gnu; run the result with qemu-aarch64 -L /usr/aarch64-linux-gnu).
#
#   cmake -S . -B build -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake
#
# Another aarch64 cross compiler works too: -DCMAKE_CXX_COMPILER=... and, for its libraries,
# -DNPAS_AARCH64_SYSROOT=....
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT CMAKE_CXX_COMPILER)
  set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
endif()
if(NOT NPAS_AARCH64_SYSROOT)
  set(NPAS_AARCH64_SYSROOT /usr/aarch64-linux-gnu)
endif()
# try_compile projects (FindThreads, the static-link check) see the same settings.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES NPAS_AARCH64_SYSROOT)

set(CMAKE_FIND_ROOT_PATH ${NPAS_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Lets ctest and add_custom_command run the target's executables on an x86 build machine.
find_program(NPAS_QEMU_AARCH64 qemu-aarch64)
if(NPAS_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${NPAS_QEMU_AARCH64} -L ${NPAS_AARCH64_SYSROOT})
endif()
