// Scalar reference math for the reference kernels: plain <cmath>, written for clarity so the
// reference stays an independent oracle for the vector kernels (which use npas/simd.h).
#ifndef NPAS_REF_MATH_H_
#define NPAS_REF_MATH_H_

#include <cmath>

namespace npas {
namespace ref {

inline float identity(float x) { return x; }
inline float relu(float x) { return x > 0.0f ? x : 0.0f; }
inline float clip(float x, float lo, float hi) { return std::fmin(std::fmax(x, lo), hi); }
inline float leaky_relu(float x, float alpha) { return x >= 0.0f ? x : alpha * x; }
inline float elu(float x, float alpha) { return x > 0.0f ? x : alpha * (std::exp(x) - 1.0f); }
inline float hardsigmoid(float x, float alpha, float beta) {
  return std::fmin(std::fmax(alpha * x + beta, 0.0f), 1.0f);
}
inline float hardswish(float x) { return x * std::fmin(std::fmax(x + 3.0f, 0.0f), 6.0f) / 6.0f; }
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float tanh(float x) { return std::tanh(x); }
inline float silu(float x) { return x * sigmoid(x); }
inline float exp(float x) { return std::exp(x); }
inline float log(float x) { return std::log(x); }
inline float sqrt(float x) { return std::sqrt(x); }
inline float neg(float x) { return -x; }
inline float abs(float x) { return std::fabs(x); }
inline float reciprocal(float x) { return 1.0f / x; }
inline float prelu(float x, float slope) { return x >= 0.0f ? x : slope * x; }

}  // namespace ref
}  // namespace npas

#endif  // NPAS_REF_MATH_H_
