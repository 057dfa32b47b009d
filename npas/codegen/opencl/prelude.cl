// npas OpenCL prelude: compiled once in front of every model's kernels (OpenCL C 1.2).
//
// Storage type. Buffers hold float (default) or half (the model was compiled with --fp16:
// the executor builds the program with -DNPAS_FP16_STORAGE and converts weights and inputs
// to half). Arithmetic is float either way: LD/LD4 widen, ST/ST4 round to nearest even.
// vload_half/vstore_half are core OpenCL 1.2, so fp16 storage needs no cl_khr_fp16.
// Offsets are in elements; vload4/vload_half4 need only element alignment.
#ifdef NPAS_FP16_STORAGE
typedef half store_t;
#define LD(p, i) vload_half((size_t)(i), (p))
#define ST(v, p, i) vstore_half((v), (size_t)(i), (p))
#define LD4(p, i) vload_half4(0, (p) + (i))
#define ST4(v, p, i) vstore_half4((v), 0, (p) + (i))
#else
typedef float store_t;
#define LD(p, i) ((p)[i])
#define ST(v, p, i) ((p)[i] = (v))
#define LD4(p, i) vload4(0, (p) + (i))
#define ST4(v, p, i) vstore4((v), 0, (p) + (i))
#endif

#define NPAS_DIV_UP(a, b) (((a) + (b) - 1) / (b))
