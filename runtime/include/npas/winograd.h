// Helpers of the Winograd F(m, 3) convolution kernels (conv_winograd.cpp.j2).
//
// The kernels vectorise the input and output transforms over tiles: lane l of every vector
// belongs to tile p0 + l, tiles numbered row-major over the output (p = ty * TW + tx). Moving
// pixels between that layout and NCHW images is the only per-lane work: these helpers do it
// with plain strided loops (a deinterleave/transpose primitive in npas/simd.h would make them
// explicit vector shuffles; compilers vectorise only the long runs).
#ifndef NPAS_WINOGRAD_H_
#define NPAS_WINOGRAD_H_

#include <algorithm>
#include <cstdint>

#include "npas/simd.h"

namespace npas {
namespace winograd {

// One channel's tile planes: R[a][jj][ty][tx] = xpad[ty*M + a][tx*M + jj] for a < M,
// jj < M + 2, ty < TH + 1, tx < TW, planes `plane` floats apart (xpad: x behind pt zero rows
// and pl zero columns, zeros after). Input pixel (j, jj) of tile p = ty * TW + tx is then
// R[j % M][jj] at p + (j / M) * TW: for a run of tiles, consecutive floats, across tile rows
// too. The inner loops are plain stride-M copies, left to the compiler's vectoriser (it uses
// the ISA's own shuffles: AVX-512/AVX2 permutes, NEON ld4); the vector abstraction has none.
template <class V, int M>
NPAS_INLINE void build_tile_planes(float* __restrict dst, const float* __restrict x, int H, int W,
                                   int pt, int pl, int TH, int TW, std::int64_t plane) {
  constexpr int A = M + 2;
  // Tiles tx whose A source pixels tx*M - pl .. tx*M - pl + A - 1 all lie inside the row.
  const int t0 = std::min(TW, (pl + M - 1) / M);
  const int t1 = std::max(t0, std::min(TW, W + pl - A >= 0 ? (W + pl - A) / M + 1 : 0));
  for (int r = 0; r < (TH + 1) * M; ++r) {
    const int ty = r / M, a = r - ty * M;
    float* d = dst + a * A * plane + static_cast<std::int64_t>(ty) * TW;
    const int y = r - pt;
    if (y < 0 || y >= H) {
      for (int jj = 0; jj < A; ++jj) simd::fill<V>(d + jj * plane, 0.0f, TW);
      continue;
    }
    const float* xr = x + static_cast<std::int64_t>(y) * W;
    for (int jj = 0; jj < A; ++jj) {
      float* __restrict dj = d + jj * plane;
      for (int tx = 0; tx < t0; ++tx) {
        const int c = tx * M + jj - pl;
        dj[tx] = c >= 0 && c < W ? xr[c] : 0.0f;
      }
      const float* __restrict sj = xr + (t0 * M + jj - pl);
      for (int tx = t0; tx < t1; ++tx) dj[tx] = sj[(tx - t0) * M];
      for (int tx = t1; tx < TW; ++tx) {
        const int c = tx * M + jj - pl;
        dj[tx] = c >= 0 && c < W ? xr[c] : 0.0f;
      }
    }
  }
}

// Where the m x m pixels of tile p = ty * TW + tx go: `off` is the offset of its top-left
// pixel in an OH x OW plane, `rows`/`cols` how many of its pixels lie inside the image (m
// except at the bottom/right edges).
struct TileDst {
  std::int32_t off;
  std::int16_t rows, cols;
};

template <int M>
NPAS_INLINE TileDst tile_dst(int p, int tw, int oh, int ow) {
  const int ty = p / tw, tx = p - ty * tw;
  const int oy = ty * M, ox = tx * M;
  const int rows = oh - oy < M ? oh - oy : M;
  const int cols = ow - ox < M ? ow - ox : M;
  return TileDst{oy * ow + ox, static_cast<std::int16_t>(rows), static_cast<std::int16_t>(cols)};
}

// Lanes [l, end) whose tiles are whole and consecutive in one tile row (their pixels are
// consecutive runs of the output rows).
template <int M>
NPAS_INLINE int whole_run(const TileDst* tiles, int l, int nl) {
  int e = l;
  while (e < nl && tiles[e].rows == M && tiles[e].cols == M &&
         tiles[e].off == tiles[l].off + (e - l) * M) {
    ++e;
  }
  return e;
}

// buf holds M*M vectors of L lanes: lane l of vector i*M + k is pixel (i, k) of tile l.
// Writes tiles [0, nl) into dst (rows ow floats apart), clipped to each tile's extent. A run
// of whole tiles writes each output row as one interleaving loop (vectorised by compilers).
template <int M, int L>
NPAS_INLINE void scatter(const float* __restrict buf, float* __restrict dst, int ow,
                         const TileDst* tiles, int nl) {
  for (int l = 0; l < nl;) {
    const TileDst t = tiles[l];
    const int e = whole_run<M>(tiles, l, nl);
    if (e > l) {
      for (int i = 0; i < M; ++i) {
        float* __restrict d = dst + t.off + i * ow;
        const float* __restrict s = buf + i * M * L;
        for (int ll = l; ll < e; ++ll) {
#pragma GCC unroll 8
          for (int k = 0; k < M; ++k) d[(ll - l) * M + k] = s[k * L + ll];
        }
      }
      l = e;
      continue;
    }
    for (int i = 0; i < t.rows; ++i) {
      for (int k = 0; k < t.cols; ++k) dst[t.off + i * ow + k] = buf[(i * M + k) * L + l];
    }
    ++l;
  }
}

// The inverse of scatter: buf's lanes get the tiles' pixels of src, zero where a tile has none.
template <int M, int L>
NPAS_INLINE void gather(float* __restrict buf, const float* __restrict src, int ow,
                        const TileDst* tiles, int nl) {
  for (int l = 0; l < L;) {
    const TileDst t = l < nl ? tiles[l] : TileDst{0, 0, 0};
    const int e = whole_run<M>(tiles, l, nl);
    if (e > l) {
      for (int i = 0; i < M; ++i) {
        const float* __restrict s = src + t.off + i * ow;
        float* __restrict d = buf + i * M * L;
        for (int ll = l; ll < e; ++ll) {
#pragma GCC unroll 8
          for (int k = 0; k < M; ++k) d[k * L + ll] = s[(ll - l) * M + k];
        }
      }
      l = e;
      continue;
    }
    for (int i = 0; i < M; ++i) {
      for (int k = 0; k < M; ++k) {
        const bool in = i < t.rows && k < t.cols;
        buf[(i * M + k) * L + l] = in ? src[t.off + i * ow + k] : 0.0f;
      }
    }
    ++l;
  }
}

}  // namespace winograd
}  // namespace npas

#endif  // NPAS_WINOGRAD_H_
