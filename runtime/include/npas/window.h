// Helpers for windowed ops (convolution, depthwise convolution, pooling): padded phase planes
// and the im2col packing built on them.
//
// A strided, padded, dilated window reads x[oy*sh + ky*dh - pt][ox*sw + kx*dw - pl]. Copying a
// channel once into sh*sw "phase planes" of its padded image, plane(a, b)[r][s] =
// xpad[r*sh + a][s*sw + b], turns every tap into a stride-1 read at a fixed offset:
// plane((ky*dh) % sh, (kx*dw) % sw)[oy + (ky*dh) / sh][ox + (kx*dw) / sw]. So every kernel
// below reads contiguous runs with no bounds checks, whatever the stride, pads and dilation.
#ifndef NPAS_WINDOW_H_
#define NPAS_WINDOW_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "npas/simd.h"

namespace npas {
namespace window {

// dst[s] = src[s * SW] for s in [0, n); the source run is within one input row.
template <class V, int SW>
NPAS_INLINE void strided_copy(float* __restrict dst, const float* __restrict src, int n) {
  int s = 0;
  if (SW == 1) {
    simd::copy<V>(dst, src, n);
    return;
  }
  if (SW == 2) {
    // Vector body only while its 2*kLanes-float read stays inside the run (last read:
    // src[2(n-1)]), so it never touches memory past the input row.
    for (; s + V::kLanes < n; s += V::kLanes) {
      V::store(dst + s, V::load_even(src + 2 * s));
    }
  }
  for (; s < n; ++s) dst[s] = src[s * SW];
}

// One channel's phase planes. `phases` lists the used (a, b) pairs; planes are Hq x Wq each,
// consecutive in that order. Outside the image they hold `pad` (0 for conv/avg, -inf for max).
template <class V, int SH, int SW>
NPAS_INLINE void build_planes(float* __restrict dst, const float* __restrict x, int H, int W,
                              int pt, int pl, int Hq, int Wq, const int* phases, int nphases,
                              float pad) {
  for (int pi = 0; pi < nphases; ++pi) {
    const int a = phases[2 * pi], b = phases[2 * pi + 1];
    // Columns s whose source x = s*SW + b - pl lies in [0, W).
    const int s_lo = std::min(Wq, std::max(0, (pl - b + SW - 1) / SW));
    const int s_hi = std::max(s_lo, std::min(Wq, (W - 1 + pl - b) / SW + 1));
    for (int r = 0; r < Hq; ++r, dst += Wq) {
      const int y = r * SH + a - pt;
      if (y < 0 || y >= H) {
        simd::fill<V>(dst, pad, Wq);
        continue;
      }
      if (s_lo > 0) simd::fill<V>(dst, pad, s_lo);
      if (s_hi > s_lo) {
        strided_copy<V, SW>(dst + s_lo, x + static_cast<std::ptrdiff_t>(y) * W + s_lo * SW + b - pl,
                            s_hi - s_lo);
      }
      if (s_hi < Wq) simd::fill<V>(dst + s_hi, pad, Wq - s_hi);
    }
  }
}

// A run of output pixels that lie in one output row: lanes [lane, lane + len) of a panel come
// from plane offset q (= oy * Wq + ox) onwards.
struct Segment {
  int lane, len, q;
};

// Split pixels [p0, p0 + n) of an OW-wide output into per-row segments; returns the count.
NPAS_INLINE int segments(Segment* seg, int p0, int n, int OW, int Wq) {
  int count = 0;
  for (int lane = 0; lane < n;) {
    const int p = p0 + lane;
    const int oy = p / OW, ox = p - oy * OW;
    const int len = std::min(OW - ox, n - lane);
    seg[count++] = Segment{lane, len, oy * Wq + ox};
    lane += len;
  }
  return count;
}

// im2col panel from phase planes: row k of the panel (width floats) gets, for each segment,
// the run src + koff(k) + q. Lanes past the segments are zeroed.
template <class V>
NPAS_INLINE void pack_panel(float* __restrict dst, int width, const float* planes,
                            const std::int64_t* koff, int kc, const Segment* seg, int nseg,
                            int n_valid) {
  if (nseg == 1 && seg[0].len == width) {
    const int q = seg[0].q;
    for (int k = 0; k < kc; ++k, dst += width) {
      const float* src = planes + koff[k] + q;
      for (int i = 0; i < width; i += V::kLanes) V::store(dst + i, V::load(src + i));
    }
    return;
  }
  for (int k = 0; k < kc; ++k, dst += width) {
    const float* src = planes + koff[k];
    for (int s = 0; s < nseg; ++s) simd::copy<V>(dst + seg[s].lane, src + seg[s].q, seg[s].len);
    if (n_valid < width) simd::fill<V>(dst + n_valid, 0.0f, width - n_valid);
  }
}

}  // namespace window
}  // namespace npas

#endif  // NPAS_WINDOW_H_
