// The vector abstraction generated kernels are written against.
//
// One struct per ISA (Scalar, Avx2, Avx512, Neon) with the same static functions over its
// `vec` type. A generated kernel picks its ISA by name
// (`using V = npas::simd::Avx512;`) from the target's data, so one template serves every ISA
// and the compiler flags only decide which blocks exist. Math on top of the primitives (exp,
// log, sigmoid, tanh, activations) is written once, generically, further down.
#ifndef NPAS_SIMD_H_
#define NPAS_SIMD_H_

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#define NPAS_INLINE inline __attribute__((always_inline))

// For functions whose unrolled register blocks fill the vector register file: GCC's
// pre-allocation scheduler on aarch64 hoists the block's loads above the FMAs that would free
// registers for them, and then spills accumulators (a 4x4 depthwise block: 100 loads instead
// of 72, plus stack traffic). Other compilers schedule after allocation and need nothing.
#if defined(__GNUC__) && !defined(__clang__) && defined(__aarch64__)
#define NPAS_REGISTER_BLOCK __attribute__((optimize("no-schedule-insns")))
#else
#define NPAS_REGISTER_BLOCK
#endif

namespace npas {
namespace simd {

// ---------------------------------------------------------------------------------------------
// Scalar: one lane. Also the model for what every ISA block must provide.
struct Scalar {
  using vec = float;
  using mask = bool;
  static constexpr int kLanes = 1;
  static constexpr const char* kName = "scalar";
  // Whether fmadd_lane<l>(b, a, acc) = acc + b * a[l] exists: an FMA by one lane of a
  // register, which lets a GEMM tile load its A column as vectors instead of broadcasting
  // every element (npas/gemm.h).
  static constexpr bool kLaneFma = false;

  static NPAS_INLINE vec zero() { return 0.0f; }
  static NPAS_INLINE vec set1(float x) { return x; }
  static NPAS_INLINE vec load(const float* p) { return *p; }
  static NPAS_INLINE void store(float* p, vec v) { *p = v; }
  // out[0 .. N) <- N consecutive vectors from p.
  template <int N>
  static NPAS_INLINE void load_n(const float* p, vec* out) {
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) out[j] = load(p + j * kLanes);
  }
  // Lanes [0, n) from p, the others zero; p[n..] is never touched.
  static NPAS_INLINE vec load_partial(const float* p, int n) { return n > 0 ? *p : 0.0f; }
  static NPAS_INLINE void store_partial(float* p, vec v, int n) {
    if (n > 0) *p = v;
  }
  static NPAS_INLINE vec add(vec a, vec b) { return a + b; }
  static NPAS_INLINE vec sub(vec a, vec b) { return a - b; }
  static NPAS_INLINE vec mul(vec a, vec b) { return a * b; }
  static NPAS_INLINE vec div(vec a, vec b) { return a / b; }
  static NPAS_INLINE vec fmadd(vec a, vec b, vec c) { return std::fma(a, b, c); }   // a*b+c
  static NPAS_INLINE vec fnmadd(vec a, vec b, vec c) { return std::fma(-a, b, c); } // c-a*b
  static NPAS_INLINE vec max(vec a, vec b) { return a > b ? a : b; }
  static NPAS_INLINE vec min(vec a, vec b) { return a < b ? a : b; }
  static NPAS_INLINE vec sqrt(vec a) { return std::sqrt(a); }
  static NPAS_INLINE vec abs(vec a) { return std::fabs(a); }
  static NPAS_INLINE vec neg(vec a) { return -a; }
  static NPAS_INLINE vec round(vec a) { return std::nearbyint(a); }
  static NPAS_INLINE vec floor(vec a) { return std::floor(a); }
  static NPAS_INLINE vec copysign(vec mag, vec sgn) { return std::copysign(mag, sgn); }
  static NPAS_INLINE mask lt(vec a, vec b) { return a < b; }
  static NPAS_INLINE mask le(vec a, vec b) { return a <= b; }
  static NPAS_INLINE mask gt(vec a, vec b) { return a > b; }
  static NPAS_INLINE mask ge(vec a, vec b) { return a >= b; }
  static NPAS_INLINE mask isnan(vec a) { return a != a; }
  static NPAS_INLINE vec select(mask m, vec t, vec f) { return m ? t : f; }
  // p * 2^n for integral n (the exp range reduction's reconstruction).
  static NPAS_INLINE vec ldexp(vec p, vec n) { return std::ldexp(p, static_cast<int>(n)); }
  // x = m * 2^e with m in [1, 2), for positive normal x.
  static NPAS_INLINE vec frexp1(vec x, vec* e) {
    int ex;
    const float m = std::frexp(x, &ex);
    *e = static_cast<float>(ex - 1);
    return m * 2.0f;
  }
  // Lanes i <- p[2i]; may read all of p[0 .. 2*kLanes).
  static NPAS_INLINE vec load_even(const float* p) { return p[0]; }
  // *even lanes i <- p[2i], *odd lanes i <- p[2i + 1]: p[0 .. 2*kLanes) de-interleaved.
  static NPAS_INLINE void load_pairs(const float* p, vec* even, vec* odd) {
    *even = p[0];
    *odd = p[1];
  }
  static NPAS_INLINE float reduce_add(vec v) { return v; }
  static NPAS_INLINE float reduce_max(vec v) { return v; }
  static NPAS_INLINE float reduce_min(vec v) { return v; }
};

// ---------------------------------------------------------------------------------------------
#if defined(__AVX2__) && defined(__FMA__)
struct Avx2 {
  using vec = __m256;
  using mask = __m256;
  static constexpr int kLanes = 8;
  static constexpr const char* kName = "avx2";
  static constexpr bool kLaneFma = false;

  static NPAS_INLINE __m256i lane_mask(int n) {
    // Lanes [0, n) all-ones: compare the lane index against n.
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
  }
  static NPAS_INLINE vec zero() { return _mm256_setzero_ps(); }
  static NPAS_INLINE vec set1(float x) { return _mm256_set1_ps(x); }
  static NPAS_INLINE vec load(const float* p) { return _mm256_loadu_ps(p); }
  static NPAS_INLINE void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
  // out[0 .. N) <- N consecutive vectors from p.
  template <int N>
  static NPAS_INLINE void load_n(const float* p, vec* out) {
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) out[j] = load(p + j * kLanes);
  }
  static NPAS_INLINE vec load_partial(const float* p, int n) {
    return _mm256_maskload_ps(p, lane_mask(n));
  }
  static NPAS_INLINE void store_partial(float* p, vec v, int n) {
    _mm256_maskstore_ps(p, lane_mask(n), v);
  }
  static NPAS_INLINE vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  static NPAS_INLINE vec sub(vec a, vec b) { return _mm256_sub_ps(a, b); }
  static NPAS_INLINE vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static NPAS_INLINE vec div(vec a, vec b) { return _mm256_div_ps(a, b); }
  static NPAS_INLINE vec fmadd(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static NPAS_INLINE vec fnmadd(vec a, vec b, vec c) { return _mm256_fnmadd_ps(a, b, c); }
  static NPAS_INLINE vec max(vec a, vec b) { return _mm256_max_ps(a, b); }
  static NPAS_INLINE vec min(vec a, vec b) { return _mm256_min_ps(a, b); }
  static NPAS_INLINE vec sqrt(vec a) { return _mm256_sqrt_ps(a); }
  static NPAS_INLINE vec abs(vec a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static NPAS_INLINE vec neg(vec a) { return _mm256_xor_ps(_mm256_set1_ps(-0.0f), a); }
  static NPAS_INLINE vec round(vec a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static NPAS_INLINE vec floor(vec a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  }
  static NPAS_INLINE vec copysign(vec mag, vec sgn) {
    const __m256 s = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sgn));
  }
  static NPAS_INLINE mask lt(vec a, vec b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static NPAS_INLINE mask le(vec a, vec b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
  static NPAS_INLINE mask gt(vec a, vec b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static NPAS_INLINE mask ge(vec a, vec b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static NPAS_INLINE mask isnan(vec a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static NPAS_INLINE vec select(mask m, vec t, vec f) { return _mm256_blendv_ps(f, t, m); }
  static NPAS_INLINE vec ldexp(vec p, vec n) {
    // n is integral and within [-126, 127] where callers use it: build 2^n in the exponent.
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
  }
  static NPAS_INLINE vec frexp1(vec x, vec* e) {
    const __m256i bits = _mm256_castps_si256(x);
    const __m256i ex = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    *e = _mm256_cvtepi32_ps(ex);
    const __m256i m = _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                      _mm256_set1_epi32(0x3f800000));
    return _mm256_castsi256_ps(m);
  }
  static NPAS_INLINE vec load_even(const float* p) {
    const __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xd8));
  }
  static NPAS_INLINE void load_pairs(const float* p, vec* even, vec* odd) {
    const __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    const __m256 e = _mm256_shuffle_ps(lo, hi, 0x88), o = _mm256_shuffle_ps(lo, hi, 0xdd);
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xd8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xd8));
  }
  static NPAS_INLINE float reduce_add(vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static NPAS_INLINE float reduce_max(vec v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static NPAS_INLINE float reduce_min(vec v) {
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
#endif  // AVX2

// ---------------------------------------------------------------------------------------------
#if defined(__AVX512F__) && defined(__AVX512DQ__)
struct Avx512 {
  using vec = __m512;
  using mask = __mmask16;
  static constexpr int kLanes = 16;
  static constexpr const char* kName = "avx512";
  static constexpr bool kLaneFma = false;

  static NPAS_INLINE __mmask16 lane_mask(int n) {
    return static_cast<__mmask16>(n >= 16 ? 0xffffu : ((1u << (n > 0 ? n : 0)) - 1u));
  }
  static NPAS_INLINE vec zero() { return _mm512_setzero_ps(); }
  static NPAS_INLINE vec set1(float x) { return _mm512_set1_ps(x); }
  static NPAS_INLINE vec load(const float* p) { return _mm512_loadu_ps(p); }
  static NPAS_INLINE void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  // out[0 .. N) <- N consecutive vectors from p.
  template <int N>
  static NPAS_INLINE void load_n(const float* p, vec* out) {
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) out[j] = load(p + j * kLanes);
  }
  static NPAS_INLINE vec load_partial(const float* p, int n) {
    return _mm512_maskz_loadu_ps(lane_mask(n), p);
  }
  static NPAS_INLINE void store_partial(float* p, vec v, int n) {
    _mm512_mask_storeu_ps(p, lane_mask(n), v);
  }
  static NPAS_INLINE vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  static NPAS_INLINE vec sub(vec a, vec b) { return _mm512_sub_ps(a, b); }
  static NPAS_INLINE vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static NPAS_INLINE vec div(vec a, vec b) { return _mm512_div_ps(a, b); }
  static NPAS_INLINE vec fmadd(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static NPAS_INLINE vec fnmadd(vec a, vec b, vec c) { return _mm512_fnmadd_ps(a, b, c); }
  static NPAS_INLINE vec max(vec a, vec b) { return _mm512_max_ps(a, b); }
  static NPAS_INLINE vec min(vec a, vec b) { return _mm512_min_ps(a, b); }
  static NPAS_INLINE vec sqrt(vec a) { return _mm512_sqrt_ps(a); }
  static NPAS_INLINE vec abs(vec a) { return _mm512_abs_ps(a); }
  static NPAS_INLINE vec neg(vec a) { return _mm512_xor_ps(_mm512_set1_ps(-0.0f), a); }
  static NPAS_INLINE vec round(vec a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static NPAS_INLINE vec floor(vec a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  }
  static NPAS_INLINE vec copysign(vec mag, vec sgn) {
    const __m512 s = _mm512_set1_ps(-0.0f);
    return _mm512_or_ps(_mm512_andnot_ps(s, mag), _mm512_and_ps(s, sgn));
  }
  static NPAS_INLINE mask lt(vec a, vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static NPAS_INLINE mask le(vec a, vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
  static NPAS_INLINE mask gt(vec a, vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static NPAS_INLINE mask ge(vec a, vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static NPAS_INLINE mask isnan(vec a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static NPAS_INLINE vec select(mask m, vec t, vec f) { return _mm512_mask_blend_ps(m, f, t); }
  static NPAS_INLINE vec ldexp(vec p, vec n) { return _mm512_scalef_ps(p, n); }
  static NPAS_INLINE vec frexp1(vec x, vec* e) {
    *e = _mm512_getexp_ps(x);
    return _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
  }
  static NPAS_INLINE vec load_even(const float* p) {
    const __m512i idx =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), idx, _mm512_loadu_ps(p + 16));
  }
  static NPAS_INLINE void load_pairs(const float* p, vec* even, vec* odd) {
    const __m512i idx =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512 lo = _mm512_loadu_ps(p), hi = _mm512_loadu_ps(p + 16);
    *even = _mm512_permutex2var_ps(lo, idx, hi);
    *odd = _mm512_permutex2var_ps(lo, _mm512_add_epi32(idx, _mm512_set1_epi32(1)), hi);
  }
  static NPAS_INLINE float reduce_add(vec v) { return _mm512_reduce_add_ps(v); }
  static NPAS_INLINE float reduce_max(vec v) { return _mm512_reduce_max_ps(v); }
  static NPAS_INLINE float reduce_min(vec v) { return _mm512_reduce_min_ps(v); }
};
#endif  // AVX512

// ---------------------------------------------------------------------------------------------
#if defined(__aarch64__) && defined(__ARM_NEON)
struct Neon {
  using vec = float32x4_t;
  using mask = uint32x4_t;
  static constexpr int kLanes = 4;
  static constexpr const char* kName = "neon";
  static constexpr bool kLaneFma = true;

  static NPAS_INLINE vec zero() { return vdupq_n_f32(0.0f); }
  static NPAS_INLINE vec set1(float x) { return vdupq_n_f32(x); }
  static NPAS_INLINE vec load(const float* p) { return vld1q_f32(p); }
  static NPAS_INLINE void store(float* p, vec v) { vst1q_f32(p, v); }
  // LD1 of 2-4 registers: one instruction for a tile row of B or a column of A.
  template <int N>
  static NPAS_INLINE void load_n(const float* p, vec* out) {
    if constexpr (N == 2) {
      const float32x4x2_t v = vld1q_f32_x2(p);
      out[0] = v.val[0], out[1] = v.val[1];
    } else if constexpr (N == 3) {
      const float32x4x3_t v = vld1q_f32_x3(p);
      out[0] = v.val[0], out[1] = v.val[1], out[2] = v.val[2];
    } else if constexpr (N == 4) {
      const float32x4x4_t v = vld1q_f32_x4(p);
      out[0] = v.val[0], out[1] = v.val[1], out[2] = v.val[2], out[3] = v.val[3];
    } else {
#pragma GCC unroll 8
      for (int j = 0; j < N; ++j) out[j] = vld1q_f32(p + j * kLanes);
    }
  }
  // No masked loads on NEON: lanes are read one 32- or 64-bit access at a time so that
  // nothing past p[n - 1] is touched (it may be the end of a mapping).
  static NPAS_INLINE vec load_partial(const float* p, int n) {
    if (n >= 4) return vld1q_f32(p);
    if (n <= 0) return zero();
    if (n == 1) return vld1q_lane_f32(p, zero(), 0);
    const vec lo = vcombine_f32(vld1_f32(p), vdup_n_f32(0.0f));
    return n == 2 ? lo : vld1q_lane_f32(p + 2, lo, 2);
  }
  static NPAS_INLINE void store_partial(float* p, vec v, int n) {
    if (n >= 4) {
      vst1q_f32(p, v);
    } else if (n == 1) {
      vst1q_lane_f32(p, v, 0);
    } else if (n >= 2) {
      vst1_f32(p, vget_low_f32(v));
      if (n == 3) vst1q_lane_f32(p + 2, v, 2);
    }
  }
  static NPAS_INLINE vec add(vec a, vec b) { return vaddq_f32(a, b); }
  static NPAS_INLINE vec sub(vec a, vec b) { return vsubq_f32(a, b); }
  static NPAS_INLINE vec mul(vec a, vec b) { return vmulq_f32(a, b); }
  static NPAS_INLINE vec div(vec a, vec b) { return vdivq_f32(a, b); }
  static NPAS_INLINE vec fmadd(vec a, vec b, vec c) { return vfmaq_f32(c, a, b); }
  static NPAS_INLINE vec fnmadd(vec a, vec b, vec c) { return vfmsq_f32(c, a, b); }
  // acc + b * a[L]: FMLA by element, no broadcast instruction.
  template <int L>
  static NPAS_INLINE vec fmadd_lane(vec b, vec a, vec acc) {
    return vfmaq_laneq_f32(acc, b, a, L);
  }
  // FMAX/FMIN: a NaN in either operand gives NaN (numpy's maximum/minimum).
  static NPAS_INLINE vec max(vec a, vec b) { return vmaxq_f32(a, b); }
  static NPAS_INLINE vec min(vec a, vec b) { return vminq_f32(a, b); }
  static NPAS_INLINE vec sqrt(vec a) { return vsqrtq_f32(a); }
  static NPAS_INLINE vec abs(vec a) { return vabsq_f32(a); }
  static NPAS_INLINE vec neg(vec a) { return vnegq_f32(a); }
  static NPAS_INLINE vec round(vec a) { return vrndnq_f32(a); }  // ties to even, as nearbyint
  static NPAS_INLINE vec floor(vec a) { return vrndmq_f32(a); }
  static NPAS_INLINE vec copysign(vec mag, vec sgn) {
    return vbslq_f32(vdupq_n_u32(0x80000000u), sgn, mag);
  }
  static NPAS_INLINE mask lt(vec a, vec b) { return vcltq_f32(a, b); }
  static NPAS_INLINE mask le(vec a, vec b) { return vcleq_f32(a, b); }
  static NPAS_INLINE mask gt(vec a, vec b) { return vcgtq_f32(a, b); }
  static NPAS_INLINE mask ge(vec a, vec b) { return vcgeq_f32(a, b); }
  static NPAS_INLINE mask isnan(vec a) { return vmvnq_u32(vceqq_f32(a, a)); }
  static NPAS_INLINE vec select(mask m, vec t, vec f) { return vbslq_f32(m, t, f); }
  static NPAS_INLINE vec ldexp(vec p, vec n) {
    // n is integral and within [-126, 127] where callers use it: build 2^n in the exponent.
    const int32x4_t e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vmulq_f32(p, vreinterpretq_f32_s32(vshlq_n_s32(e, 23)));
  }
  static NPAS_INLINE vec frexp1(vec x, vec* e) {
    const uint32x4_t bits = vreinterpretq_u32_f32(x);
    const int32x4_t ex =
        vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(bits, 23)), vdupq_n_s32(127));
    *e = vcvtq_f32_s32(ex);
    const uint32x4_t m =
        vorrq_u32(vandq_u32(bits, vdupq_n_u32(0x007fffffu)), vdupq_n_u32(0x3f800000u));
    return vreinterpretq_f32_u32(m);
  }
  // LD2 de-interleaves: val[0] holds the even floats of p[0 .. 8).
  static NPAS_INLINE vec load_even(const float* p) { return vld2q_f32(p).val[0]; }
  static NPAS_INLINE void load_pairs(const float* p, vec* even, vec* odd) {
    const float32x4x2_t v = vld2q_f32(p);
    *even = v.val[0];
    *odd = v.val[1];
  }
  static NPAS_INLINE float reduce_add(vec v) { return vaddvq_f32(v); }
  static NPAS_INLINE float reduce_max(vec v) { return vmaxvq_f32(v); }
  static NPAS_INLINE float reduce_min(vec v) { return vminvq_f32(v); }
};
#endif  // NEON

// ---------------------------------------------------------------------------------------------
// Math written once over the primitives. Accuracy targets ~1e-6 relative over the float range
// CNNs produce; callers get IEEE inf/0 at the ends of the exp range.

// exp: x = n*ln2 + r, |r| <= ln2/2, degree-7 Taylor on r (truncation < 1e-8), times 2^n.
template <class V>
NPAS_INLINE typename V::vec exp(typename V::vec x) {
  using vec = typename V::vec;
  const vec hi = V::set1(88.3762626647949f);
  const vec lo = V::set1(-87.3365478515625f);
  const vec xc = V::min(V::max(x, lo), hi);
  const vec n = V::round(V::mul(xc, V::set1(1.44269504088896341f)));
  vec r = V::fnmadd(n, V::set1(0.693359375f), xc);  // ln2 split: exact high part ...
  r = V::fnmadd(n, V::set1(-2.12194440e-4f), r);    // ... plus the rounding remainder
  vec p = V::set1(1.0f / 5040.0f);
  p = V::fmadd(p, r, V::set1(1.0f / 720.0f));
  p = V::fmadd(p, r, V::set1(1.0f / 120.0f));
  p = V::fmadd(p, r, V::set1(1.0f / 24.0f));
  p = V::fmadd(p, r, V::set1(1.0f / 6.0f));
  p = V::fmadd(p, r, V::set1(0.5f));
  p = V::fmadd(p, r, V::set1(1.0f));
  p = V::fmadd(p, r, V::set1(1.0f));
  vec y = V::ldexp(p, n);
  // Below the clamp the true result is a denormal or zero; zero is within 1.2e-38 of it.
  y = V::select(V::lt(x, lo), V::zero(), y);
  y = V::select(V::gt(x, V::set1(88.7228390f)), V::set1(__builtin_inff()), y);
  return V::select(V::isnan(x), x, y);
}

// log: x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s), s = (m-1)/(m+1).
template <class V>
NPAS_INLINE typename V::vec log(typename V::vec x) {
  using vec = typename V::vec;
  vec e;
  vec m = V::frexp1(x, &e);
  const auto big = V::gt(m, V::set1(1.41421356237f));
  m = V::select(big, V::mul(m, V::set1(0.5f)), m);
  e = V::select(big, V::add(e, V::set1(1.0f)), e);
  const vec s = V::div(V::sub(m, V::set1(1.0f)), V::add(m, V::set1(1.0f)));
  const vec s2 = V::mul(s, s);
  vec p = V::set1(1.0f / 11.0f);
  p = V::fmadd(p, s2, V::set1(1.0f / 9.0f));
  p = V::fmadd(p, s2, V::set1(1.0f / 7.0f));
  p = V::fmadd(p, s2, V::set1(1.0f / 5.0f));
  p = V::fmadd(p, s2, V::set1(1.0f / 3.0f));
  p = V::fmadd(p, s2, V::set1(1.0f));
  const vec logm = V::mul(V::mul(s, p), V::set1(2.0f));
  vec y = V::fmadd(e, V::set1(0.693147180559945f), logm);
  // Edges: log(0) = -inf, log(x<0) = nan, log(inf) = inf, nan stays nan.
  y = V::select(V::le(x, V::zero()), V::set1(-__builtin_inff()), y);
  y = V::select(V::lt(x, V::zero()), V::set1(__builtin_nanf("")), y);
  y = V::select(V::ge(x, V::set1(__builtin_inff())), x, y);
  return V::select(V::isnan(x), x, y);
}

template <class V>
NPAS_INLINE typename V::vec sigmoid(typename V::vec x) {
  const auto one = V::set1(1.0f);
  return V::div(one, V::add(one, exp<V>(V::neg(x))));
}

// tanh: odd polynomial near 0 (where 1 - 2/(e^2x + 1) would cancel), the exp form elsewhere.
template <class V>
NPAS_INLINE typename V::vec tanh(typename V::vec x) {
  using vec = typename V::vec;
  const vec a = V::min(V::abs(x), V::set1(9.0f));
  const vec t = V::mul(a, a);
  vec p = V::set1(-0.005731052719056606f);
  p = V::fmadd(p, t, V::set1(0.020664602518081665f));
  p = V::fmadd(p, t, V::set1(-0.05374840646982193f));
  p = V::fmadd(p, t, V::set1(0.13331560790538788f));
  p = V::fmadd(p, t, V::set1(-0.3333328664302826f));
  p = V::fmadd(p, t, V::set1(1.0f));
  const vec small = V::mul(a, p);
  const vec e = exp<V>(V::add(a, a));
  const vec large = V::sub(V::set1(1.0f), V::div(V::set1(2.0f), V::add(e, V::set1(1.0f))));
  const vec y = V::select(V::lt(a, V::set1(0.625f)), small, large);
  return V::select(V::isnan(x), x, V::copysign(y, x));
}

// ---- activations, exactly as the IR defines them ----
template <class V>
NPAS_INLINE typename V::vec relu(typename V::vec x) {
  return V::max(x, V::zero());
}
template <class V>
NPAS_INLINE typename V::vec clip(typename V::vec x, float lo, float hi) {
  return V::min(V::max(x, V::set1(lo)), V::set1(hi));
}
template <class V>
NPAS_INLINE typename V::vec leaky_relu(typename V::vec x, float alpha) {
  return V::select(V::ge(x, V::zero()), x, V::mul(x, V::set1(alpha)));
}
template <class V>
NPAS_INLINE typename V::vec elu(typename V::vec x, float alpha) {
  const auto em1 = V::sub(exp<V>(x), V::set1(1.0f));
  return V::select(V::gt(x, V::zero()), x, V::mul(em1, V::set1(alpha)));
}
template <class V>
NPAS_INLINE typename V::vec hardsigmoid(typename V::vec x, float alpha, float beta) {
  return clip<V>(V::fmadd(x, V::set1(alpha), V::set1(beta)), 0.0f, 1.0f);
}
template <class V>
NPAS_INLINE typename V::vec hardswish(typename V::vec x) {
  const auto r6 = clip<V>(V::add(x, V::set1(3.0f)), 0.0f, 6.0f);
  return V::mul(V::mul(x, r6), V::set1(1.0f / 6.0f));
}
template <class V>
NPAS_INLINE typename V::vec silu(typename V::vec x) {
  return V::mul(x, sigmoid<V>(x));
}
template <class V>
NPAS_INLINE typename V::vec identity(typename V::vec x) {
  return x;
}
template <class V>
NPAS_INLINE typename V::vec reciprocal(typename V::vec x) {
  return V::div(V::set1(1.0f), x);
}
template <class V>
NPAS_INLINE typename V::vec prelu(typename V::vec x, typename V::vec slope) {
  return V::select(V::ge(x, V::zero()), x, V::mul(x, slope));
}

// Copy n floats (unaligned both sides), vector body and a masked tail.
template <class V>
NPAS_INLINE void copy(float* dst, const float* src, int n) {
  int i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) V::store(dst + i, V::load(src + i));
  if (i < n) V::store_partial(dst + i, V::load_partial(src + i, n - i), n - i);
}

template <class V>
NPAS_INLINE void fill(float* dst, float value, std::int64_t n) {
  const auto v = V::set1(value);
  std::int64_t i = 0;
  for (; i + V::kLanes <= n; i += V::kLanes) V::store(dst + i, v);
  if (i < n) V::store_partial(dst + i, v, static_cast<int>(n - i));
}

}  // namespace simd
}  // namespace npas

#endif  // NPAS_SIMD_H_
