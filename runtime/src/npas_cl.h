// The slice of the OpenCL 1.2 C API npas uses, declared here so that generated projects build
// without an OpenCL SDK (the NDK has none) and bind the functions at run time with dlsym.
// Types, constants and signatures are those of the Khronos specification.
#ifndef NPAS_CL_H_
#define NPAS_CL_H_

#include <cstddef>
#include <cstdint>

namespace npas {
namespace cl {

typedef std::int32_t cl_int;
typedef std::uint32_t cl_uint;
typedef std::uint64_t cl_ulong;
typedef cl_ulong cl_bitfield;
typedef struct _cl_platform_id* cl_platform_id;
typedef struct _cl_device_id* cl_device_id;
typedef struct _cl_context* cl_context;
typedef struct _cl_command_queue* cl_command_queue;
typedef struct _cl_mem* cl_mem;
typedef struct _cl_program* cl_program;
typedef struct _cl_kernel* cl_kernel;
typedef struct _cl_event* cl_event;

constexpr cl_int CL_SUCCESS = 0;
constexpr cl_int CL_DEVICE_NOT_FOUND = -1;
constexpr cl_int CL_MEM_OBJECT_ALLOCATION_FAILURE = -4;
constexpr cl_int CL_OUT_OF_RESOURCES = -5;
constexpr cl_int CL_OUT_OF_HOST_MEMORY = -6;
constexpr cl_int CL_BUILD_PROGRAM_FAILURE = -11;
constexpr cl_int CL_INVALID_WORK_GROUP_SIZE = -54;
constexpr cl_int CL_INVALID_BUFFER_SIZE = -61;
constexpr cl_int CL_PLATFORM_NOT_FOUND_KHR = -1001;

constexpr cl_bitfield CL_DEVICE_TYPE_CPU = 1 << 1;
constexpr cl_bitfield CL_DEVICE_TYPE_GPU = 1 << 2;
constexpr cl_bitfield CL_DEVICE_TYPE_ALL = 0xFFFFFFFF;
constexpr cl_uint CL_PLATFORM_VERSION = 0x0901;
constexpr cl_uint CL_PLATFORM_NAME = 0x0902;
constexpr cl_uint CL_DEVICE_TYPE = 0x1000;
constexpr cl_uint CL_DEVICE_MAX_WORK_GROUP_SIZE = 0x1004;
constexpr cl_uint CL_DEVICE_MAX_MEM_ALLOC_SIZE = 0x1010;
constexpr cl_uint CL_DEVICE_GLOBAL_MEM_SIZE = 0x101F;
constexpr cl_uint CL_DEVICE_NAME = 0x102B;
constexpr cl_uint CL_DEVICE_VENDOR = 0x102C;
constexpr cl_uint CL_DRIVER_VERSION = 0x102D;
constexpr cl_uint CL_DEVICE_VERSION = 0x102F;
constexpr cl_bitfield CL_QUEUE_PROFILING_ENABLE = 1 << 1;
constexpr cl_bitfield CL_MEM_READ_WRITE = 1 << 0;
constexpr cl_bitfield CL_MEM_READ_ONLY = 1 << 2;
constexpr cl_uint CL_PROGRAM_BINARY_SIZES = 0x1165;
constexpr cl_uint CL_PROGRAM_BINARIES = 0x1166;
constexpr cl_uint CL_PROGRAM_BUILD_LOG = 0x1183;
constexpr cl_uint CL_KERNEL_WORK_GROUP_SIZE = 0x11B0;
constexpr cl_uint CL_PROFILING_COMMAND_START = 0x1282;
constexpr cl_uint CL_PROFILING_COMMAND_END = 0x1283;
constexpr cl_uint CL_TRUE = 1;

// X(name, return type, parameter list)
#define NPAS_CL_FUNCTIONS(X)                                                                     \
  X(clGetPlatformIDs, cl_int, (cl_uint, cl_platform_id*, cl_uint*))                              \
  X(clGetPlatformInfo, cl_int, (cl_platform_id, cl_uint, std::size_t, void*, std::size_t*))     \
  X(clGetDeviceIDs, cl_int, (cl_platform_id, cl_bitfield, cl_uint, cl_device_id*, cl_uint*))     \
  X(clGetDeviceInfo, cl_int, (cl_device_id, cl_uint, std::size_t, void*, std::size_t*))         \
  X(clCreateContext, cl_context,                                                                 \
    (const std::intptr_t*, cl_uint, const cl_device_id*, void*, void*, cl_int*))                 \
  X(clReleaseContext, cl_int, (cl_context))                                                      \
  X(clCreateCommandQueue, cl_command_queue, (cl_context, cl_device_id, cl_bitfield, cl_int*))   \
  X(clReleaseCommandQueue, cl_int, (cl_command_queue))                                           \
  X(clCreateBuffer, cl_mem, (cl_context, cl_bitfield, std::size_t, void*, cl_int*))             \
  X(clReleaseMemObject, cl_int, (cl_mem))                                                        \
  X(clEnqueueWriteBuffer, cl_int,                                                                \
    (cl_command_queue, cl_mem, cl_uint, std::size_t, std::size_t, const void*, cl_uint,          \
     const cl_event*, cl_event*))                                                                \
  X(clEnqueueReadBuffer, cl_int,                                                                 \
    (cl_command_queue, cl_mem, cl_uint, std::size_t, std::size_t, void*, cl_uint,                \
     const cl_event*, cl_event*))                                                                \
  X(clCreateProgramWithSource, cl_program,                                                       \
    (cl_context, cl_uint, const char**, const std::size_t*, cl_int*))                            \
  X(clCreateProgramWithBinary, cl_program,                                                       \
    (cl_context, cl_uint, const cl_device_id*, const std::size_t*, const unsigned char**,       \
     cl_int*, cl_int*))                                                                          \
  X(clBuildProgram, cl_int,                                                                      \
    (cl_program, cl_uint, const cl_device_id*, const char*, void*, void*))                       \
  X(clGetProgramBuildInfo, cl_int,                                                               \
    (cl_program, cl_device_id, cl_uint, std::size_t, void*, std::size_t*))                       \
  X(clGetProgramInfo, cl_int, (cl_program, cl_uint, std::size_t, void*, std::size_t*))          \
  X(clReleaseProgram, cl_int, (cl_program))                                                      \
  X(clCreateKernel, cl_kernel, (cl_program, const char*, cl_int*))                               \
  X(clReleaseKernel, cl_int, (cl_kernel))                                                        \
  X(clSetKernelArg, cl_int, (cl_kernel, cl_uint, std::size_t, const void*))                      \
  X(clGetKernelWorkGroupInfo, cl_int,                                                            \
    (cl_kernel, cl_device_id, cl_uint, std::size_t, void*, std::size_t*))                        \
  X(clEnqueueNDRangeKernel, cl_int,                                                              \
    (cl_command_queue, cl_kernel, cl_uint, const std::size_t*, const std::size_t*,              \
     const std::size_t*, cl_uint, const cl_event*, cl_event*))                                   \
  X(clFinish, cl_int, (cl_command_queue))                                                        \
  X(clWaitForEvents, cl_int, (cl_uint, const cl_event*))                                         \
  X(clGetEventProfilingInfo, cl_int, (cl_event, cl_uint, std::size_t, void*, std::size_t*))     \
  X(clReleaseEvent, cl_int, (cl_event))

}  // namespace cl
}  // namespace npas

#endif  // NPAS_CL_H_
