// Register-blocked GEMM micro-kernel shared by every GEMM-shaped kernel (conv, grouped conv,
// dense, matmul, conv-transpose), plus the helpers that pack activations into its panels.
//
// C[MR x NR] (+)= A[K x MR] * B[K x NR], where A is packed k-major (MR floats per k) and B
// rows (NR = NV vectors used per k) are ldb floats apart. The accumulators stay in registers
// for the whole K loop; the epilogue (bias, residual add, activation) runs on them before the single store.
// MR and NV are template parameters so every generated kernel instantiates exactly the tiles
// its shape needs (a main tile plus the M and N remainders, all known at compile time).
#ifndef NPAS_GEMM_H_
#define NPAS_GEMM_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "npas/simd.h"

namespace npas {
namespace gemm {

enum BiasMode { kNoBias = 0, kBiasRow = 1, kBiasCol = 2 };

// Software prefetch distance (bytes) on the packed A stream. Weights of the late, narrow layers
// of a CNN (7x7 outputs) come from DRAM once per inference at ~2 bytes/cycle at full FMA rate;
// the hardware prefetcher alone falls behind there.
#ifndef NPAS_PREFETCH_A_BYTES
#define NPAS_PREFETCH_A_BYTES 2048
#endif

NPAS_INLINE void prefetch(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, 0, 3);
#endif
}

struct NoAct {
  template <class V>
  static NPAS_INLINE typename V::vec apply(typename V::vec x) {
    return x;
  }
};

// One output tile. `bias` points at this tile's first row (kBiasRow: MR values) or first
// column (kBiasCol: NR values). `res` is the residual tensor at the same offset as `c` (same
// ldc) or null. `accumulate`: add to what C holds (a K block after the first). `last`: the
// final K block, apply the epilogue. m_valid/n_valid clip the store for remainder tiles.
template <class V, int MR, int NV, int kBias, bool kRes, class Act>
NPAS_INLINE void tile(int kc, const float* __restrict a, const float* __restrict b,
                      std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc, int m_valid, int n_valid,
                      bool accumulate, bool last, const float* bias, const float* res) {
  using vec = typename V::vec;
  constexpr int L = V::kLanes;
  constexpr int NR = NV * L;
  vec acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
  }
  for (int k = 0; k < kc; ++k) {
    if (NPAS_PREFETCH_A_BYTES > 0) prefetch(reinterpret_cast<const char*>(a) + NPAS_PREFETCH_A_BYTES);
    vec bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const vec av = V::set1(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fmadd(av, bv[j], acc[i][j]);
    }
    a += MR;
    b += ldb;
  }
  const bool full = m_valid == MR && n_valid == NR;
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (!full && i >= m_valid) break;
    float* ci = c + i * ldc;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const int n = full ? L : std::min(L, n_valid - j * L);
      if (n <= 0) break;
      vec v = acc[i][j];
      if (accumulate) v = V::add(v, n == L ? V::load(ci + j * L) : V::load_partial(ci + j * L, n));
      if (last) {
        if (kBias == kBiasRow) v = V::add(v, V::set1(bias[i]));
        if (kBias == kBiasCol) v = V::add(v, V::load(bias + j * L));
        if (kRes) {
          const float* ri = res + i * ldc + j * L;
          v = V::add(v, n == L ? V::load(ri) : V::load_partial(ri, n));
        }
        v = Act::template apply<V>(v);
      }
      if (n == L) {
        V::store(ci + j * L, v);
      } else {
        V::store_partial(ci + j * L, v, n);
      }
    }
  }
}

// The same register tile with B read in place: row k of B is base + koff[k] (NR floats), e.g.
// one tap of one channel in padded phase planes (implicit GEMM: no im2col copy at all). The
// raw accumulators go to c (ldc floats per row); the caller applies the epilogue.
template <class V, int MR, int NV>
NPAS_INLINE void tile_gather(int kc, const float* __restrict a, const float* base,
                             const std::int32_t* __restrict koff, float* __restrict c,
                             std::ptrdiff_t ldc) {
  using vec = typename V::vec;
  constexpr int L = V::kLanes;
  vec acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
  }
  for (int k = 0; k < kc; ++k) {
    if (NPAS_PREFETCH_A_BYTES > 0) prefetch(reinterpret_cast<const char*>(a) + NPAS_PREFETCH_A_BYTES);
    const float* b = base + koff[k];
    vec bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) bv[j] = V::load(b + j * L);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const vec av = V::set1(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fmadd(av, bv[j], acc[i][j]);
    }
    a += MR;
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) V::store(c + i * ldc + j * L, acc[i][j]);
  }
}

// Pack rows of B: panel row k (NR floats) <- src + offsets[k] + col0, n_valid floats, the rest
// zero (so remainder columns compute on zeros, never on stale scratch).
template <class V, int NV>
NPAS_INLINE void pack_b_contiguous(float* __restrict dst, const float* src, std::ptrdiff_t ld,
                                   int kc, int n_valid) {
  constexpr int L = V::kLanes;
  if (n_valid == NV * L) {
    for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) V::store(dst + j * L, V::load(src + j * L));
      dst += NV * L;
      src += ld;
    }
    return;
  }
  for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const int n = std::max(0, std::min(L, n_valid - j * L));
      V::store(dst + j * L, V::load_partial(src + j * L, n));
    }
    dst += NV * L;
    src += ld;
  }
}

// Pack MR rows of a row-major A (rows m0.., ld floats apart) k-major: dst[k*MR + i] =
// a[i*ld + k]; missing rows (i >= m_valid) are zero.
template <int MR>
NPAS_INLINE void pack_a_rows(float* __restrict dst, const float* a, std::ptrdiff_t ld, int kc,
                             int m_valid) {
  for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) dst[k * MR + i] = i < m_valid ? a[i * ld + k] : 0.0f;
  }
}

// How a GEMM over (groups, pixel blocks, M chunks) is cut into work items for `threads`:
// pixel blocks of at most nc_max columns (a multiple of nr); when there are too few column
// tiles to keep every thread busy the M dimension is split instead.
struct Plan {
  int nblocks;  // column blocks per group
  int nc;       // columns per block (multiple of nr)
  int mchunks;  // M chunks per (group, column block)
  std::int64_t items() const { return static_cast<std::int64_t>(nblocks) * mchunks; }
};

inline Plan plan(int groups, int n, int nr, int nc_max, int mtiles, int threads) {
  const int ntiles = (n + nr - 1) / nr;
  int nblocks = std::max(1, (n + nc_max - 1) / nc_max);
  int mchunks = 1;
  if (threads > 1) {
    if (static_cast<std::int64_t>(groups) * ntiles >= 4 * threads) {
      // Enough column tiles: give every thread the same number of blocks.
      while ((static_cast<std::int64_t>(groups) * nblocks) % threads != 0 && nblocks < ntiles) {
        ++nblocks;
      }
    } else {
      mchunks = std::min(mtiles, threads * 2);
    }
  }
  nblocks = std::min(nblocks, ntiles);
  const int tiles_per_block = (ntiles + nblocks - 1) / nblocks;
  nblocks = (ntiles + tiles_per_block - 1) / tiles_per_block;
  return Plan{nblocks, tiles_per_block * nr, mchunks};
}

}  // namespace gemm
}  // namespace npas

#endif  // NPAS_GEMM_H_
