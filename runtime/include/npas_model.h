/* C ABI of a model compiled by npas. Every generated libnpas_model.so exports exactly this;
 * the Python module (npas._runtime), npas_bench and Android apps all go through it. */
#ifndef NPAS_MODEL_H_
#define NPAS_MODEL_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct npas_model npas_model;

typedef struct npas_options {
  int threads;   /* worker threads including the caller; <= 0 means 1 */
  int profile;   /* NPAS_PROFILE_* bits (any other non-zero value: time layers) */
} npas_options;

/* npas_options.profile / npas_model_set_profiling bits. */
#define NPAS_PROFILE_TIMES 1 /* time every layer on each run */
/* Execute marker no-ops (aarch64 HINT #125 at the start of a run, #126 before each layer,
 * #127 at its end) that an instruction-counting emulator plugin uses to attribute executed
 * instructions to runs and layers. Architecturally NOPs; nothing on other architectures. */
#define NPAS_PROFILE_MARKERS 2

/* Loads weights.bin (written by the compiler beside the library). NULL on failure:
 * npas_last_error() says why. */
npas_model* npas_model_create(const char* weights_path, const npas_options* options);
void npas_model_destroy(npas_model* model);

/* Runs one inference on caller-owned, contiguous fp32 buffers in the order of the model's
 * inputs/outputs. Returns 0 on success, non-zero on failure (npas_last_error()). */
int npas_model_run(npas_model* model, const float* const* inputs, float* const* outputs);
int npas_model_set_threads(npas_model* model, int threads);

/* Signature. */
int npas_model_num_inputs(const npas_model* model);
int npas_model_num_outputs(const npas_model* model);
const char* npas_model_input_name(const npas_model* model, int index);
const char* npas_model_output_name(const npas_model* model, int index);
int npas_model_input_rank(const npas_model* model, int index);
int npas_model_output_rank(const npas_model* model, int index);
const int64_t* npas_model_input_shape(const npas_model* model, int index);
const int64_t* npas_model_output_shape(const npas_model* model, int index);

/* Per-layer profile of the last run made with profiling on. */
int npas_model_num_layers(const npas_model* model);
const char* npas_model_layer_name(const npas_model* model, int index);
const char* npas_model_layer_op(const npas_model* model, int index);
const char* npas_model_layer_kernel(const npas_model* model, int index);
const char* npas_model_layer_scheme(const npas_model* model, int index);
int64_t npas_model_layer_macs(const npas_model* model, int index);
double npas_model_layer_ms(const npas_model* model, int index);
int npas_model_set_profiling(npas_model* model, int on);

/* Static facts. */
int64_t npas_model_peak_activation_bytes(const npas_model* model);
const char* npas_model_isa(const npas_model* model); /* e.g. "avx2", "avx512", "scalar" */
/* Where the layers run: "cpu: avx2", or for OpenCL targets "opencl: platform=...; device=...;
   storage=fp32|fp16; program=built|cached; build_ms=...; cache=FILE". */
const char* npas_model_device_info(const npas_model* model);

const char* npas_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* NPAS_MODEL_H_ */
