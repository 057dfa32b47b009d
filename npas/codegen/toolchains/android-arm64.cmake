# CMake toolchain file of the npas arm64-android target: the Android NDK's own toolchain file,
# for arm64-v8a phones.
#
#   export ANDROID_NDK_HOME=/path/to/android-ndk-r26d
#   cmake -S . -B build -G Ninja -DCMAKE_TOOLCHAIN_FILE=toolchains/android-arm64.cmake
#
# The NDK comes from https://developer.android.com/ndk/downloads (r23 or newer);
# -DNPAS_ANDROID_NDK=... names it instead of the environment.
if(NOT NPAS_ANDROID_NDK)
  if(DEFINED ENV{ANDROID_NDK_HOME} AND NOT "$ENV{ANDROID_NDK_HOME}" STREQUAL "")
    set(NPAS_ANDROID_NDK "$ENV{ANDROID_NDK_HOME}")
  elseif(DEFINED ENV{ANDROID_NDK_ROOT} AND NOT "$ENV{ANDROID_NDK_ROOT}" STREQUAL "")
    set(NPAS_ANDROID_NDK "$ENV{ANDROID_NDK_ROOT}")
  endif()
endif()
if(NOT NPAS_ANDROID_NDK OR NOT EXISTS "${NPAS_ANDROID_NDK}/build/cmake/android.toolchain.cmake")
  message(FATAL_ERROR
    "npas: the Android NDK is needed (no build/cmake/android.toolchain.cmake under "
    "'${NPAS_ANDROID_NDK}'). Download one (r23 or newer) from "
    "https://developer.android.com/ndk/downloads and set ANDROID_NDK_HOME to it.")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES NPAS_ANDROID_NDK)

if(NOT ANDROID_ABI)
  set(ANDROID_ABI arm64-v8a)
endif()
if(NOT ANDROID_PLATFORM)
  set(ANDROID_PLATFORM android-24)
endif()
# The NDK's default libc++_shared would have to be shipped beside the library; static
# libc++ keeps the model one self-contained .so.
if(NOT ANDROID_STL)
  set(ANDROID_STL c++_static)
endif()
include("${NPAS_ANDROID_NDK}/build/cmake/android.toolchain.cmake")
