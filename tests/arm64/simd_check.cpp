// The contract of one npas/simd.h ISA struct (NPAS_SIMD_STRUCT, e.g. Neon), checked lane by
// lane against <cmath>: partial loads and stores never touch memory past n floats (the data
// ends at a PROT_NONE page, so an over-read or over-write faults), load_even reads at most 2L
// floats, and every primitive and the generic math agree with the scalar definitions.
// Prints one line per failure and exits 1 if any.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "npas/simd.h"

using V = npas::simd::NPAS_SIMD_STRUCT;
using vec = V::vec;
constexpr int L = V::kLanes;

namespace {

int failures = 0;

void expect(bool ok, const char* what, int lane, double got, double want) {
  if (!ok) {
    ++failures;
    std::printf("FAIL %s lane %d: got %.9g want %.9g\n", what, lane, got, want);
  }
}

void lanes(vec v, float* out) { V::store(out, v); }

bool same(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0;
}

// `n` floats that end exactly at an inaccessible page.
float* at_page_end(int n) {
  static char* region = nullptr;
  const long page = sysconf(_SC_PAGESIZE);
  if (region == nullptr) {
    region = static_cast<char*>(
        mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(region + page, page, PROT_NONE);
  }
  return reinterpret_cast<float*>(region + page) - n;
}

void check_partial() {
  float out[16];
  for (int n = 0; n <= L; ++n) {
    float* p = at_page_end(n);
    for (int i = 0; i < n; ++i) p[i] = 1.5f + i;
    lanes(V::load_partial(p, n), out);
    for (int i = 0; i < L; ++i) {
      const float want = i < n ? 1.5f + i : 0.0f;
      expect(out[i] == want, "load_partial", i, out[i], want);
    }
    // Nothing before p either: the store must write exactly [p, p + n).
    float* q = at_page_end(n + 1);
    q[0] = -7.0f;
    for (int i = 0; i < L; ++i) out[i] = 10.0f + i;
    V::store_partial(q + 1, V::load(out), n);
    expect(q[0] == -7.0f, "store_partial (before)", -1, q[0], -7.0f);
    for (int i = 0; i < n; ++i) expect(q[1 + i] == 10.0f + i, "store_partial", i, q[1 + i], i);
  }
  // load_even reads p[0 .. 2L) at most.
  float* p = at_page_end(2 * L);
  for (int i = 0; i < 2 * L; ++i) p[i] = static_cast<float>(i);
  lanes(V::load_even(p), out);
  for (int i = 0; i < L; ++i) expect(out[i] == 2.0f * i, "load_even", i, out[i], 2 * i);
}

template <class F, class G>
void check_unary(const char* what, F vf, G sf, const float* xs, int n, double rtol, double atol) {
  float in[16], out[16];
  for (int b = 0; b < n; b += L) {
    for (int i = 0; i < L; ++i) in[i] = xs[(b + i) % n];
    lanes(vf(V::load(in)), out);
    for (int i = 0; i < L; ++i) {
      const double want = sf(static_cast<double>(in[i]));
      const bool ok = std::isnan(want) ? std::isnan(out[i])
                      : std::isinf(want) ? out[i] == want
                                         : std::fabs(out[i] - want) <= atol + rtol * std::fabs(want);
      if (!ok) {
        ++failures;
        std::printf("FAIL %s(%.9g): got %.9g want %.9g\n", what, in[i], out[i], want);
      }
    }
  }
}

void check_ops() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float xs[] = {0.0f, -0.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 3.49f, 1e-6f, -1e-6f,
                      20.0f, -20.0f, 87.0f, -87.0f, 88.3f, -100.0f, 3.0f, -3.0f, 0.625f,
                      -0.625f, 1e30f, -1e30f, inf, -inf, nan, 7.0f, 0.1f, -9.5f};
  constexpr int n = sizeof(xs) / sizeof(xs[0]);
  const float pos[] = {1e-30f, 1e-6f, 0.1f, 0.5f, 0.70710678f, 1.0f, 1.41421356f, 2.0f, 3.0f,
                       10.0f, 1234.5f, 1e30f, inf, 0.0f, -1.0f, nan};
  constexpr int np = sizeof(pos) / sizeof(pos[0]);
  // Exact primitives.
  check_unary("round", [](vec v) { return V::round(v); }, [](double x) {
    return static_cast<double>(std::nearbyint(static_cast<float>(x)));
  }, xs, n, 0, 0);
  check_unary("floor", [](vec v) { return V::floor(v); }, [](double x) { return std::floor(x); },
              xs, n, 0, 0);
  check_unary("abs", [](vec v) { return V::abs(v); }, [](double x) { return std::fabs(x); }, xs,
              n, 0, 0);
  check_unary("neg", [](vec v) { return V::neg(v); }, [](double x) { return -x; }, xs, n, 0, 0);
  check_unary("sqrt", [](vec v) { return V::sqrt(v); }, [](double x) {
    return static_cast<double>(std::sqrt(static_cast<float>(x)));
  }, pos, np, 0, 0);
  check_unary("copysign", [](vec v) { return V::copysign(V::set1(2.0f), v); },
              [](double x) { return std::copysign(2.0, x); }, xs, n, 0, 0);
  // Generic math (npas/simd.h's exp/log/tanh/sigmoid), ~1e-6 relative.
  check_unary("exp", [](vec v) { return npas::simd::exp<V>(v); },
              [](double x) { return std::exp(x); }, xs, n, 2e-6, 1e-37);
  check_unary("log", [](vec v) { return npas::simd::log<V>(v); },
              [](double x) { return std::log(x); }, pos, np, 2e-6, 1e-7);
  check_unary("tanh", [](vec v) { return npas::simd::tanh<V>(v); },
              [](double x) { return std::tanh(x); }, xs, n, 2e-6, 1e-7);
  check_unary("sigmoid", [](vec v) { return npas::simd::sigmoid<V>(v); },
              [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, xs, n, 2e-6, 1e-7);

  float a[16], b[16], out[16], c[16];
  for (int i = 0; i < L; ++i) {
    a[i] = 0.75f * i - 1.0f;
    b[i] = 2.0f - 0.5f * i;
    c[i] = 0.25f * i;
  }
  const vec va = V::load(a), vb = V::load(b), vc = V::load(c);
  struct {
    const char* what;
    vec got;
    float (*want)(float, float, float);
  } binops[] = {
      {"add", V::add(va, vb), [](float x, float y, float) { return x + y; }},
      {"sub", V::sub(va, vb), [](float x, float y, float) { return x - y; }},
      {"mul", V::mul(va, vb), [](float x, float y, float) { return x * y; }},
      {"div", V::div(va, vb), [](float x, float y, float) { return x / y; }},
      {"fmadd", V::fmadd(va, vb, vc), [](float x, float y, float z) { return std::fma(x, y, z); }},
      {"fnmadd", V::fnmadd(va, vb, vc),
       [](float x, float y, float z) { return std::fma(-x, y, z); }},
      {"max", V::max(va, vb), [](float x, float y, float) { return x > y ? x : y; }},
      {"min", V::min(va, vb), [](float x, float y, float) { return x < y ? x : y; }},
      {"select(lt)", V::select(V::lt(va, vb), va, vc),
       [](float x, float y, float z) { return x < y ? x : z; }},
      {"select(le)", V::select(V::le(va, vb), va, vc),
       [](float x, float y, float z) { return x <= y ? x : z; }},
      {"select(gt)", V::select(V::gt(va, vb), va, vc),
       [](float x, float y, float z) { return x > y ? x : z; }},
      {"select(ge)", V::select(V::ge(va, vb), va, vc),
       [](float x, float y, float z) { return x >= y ? x : z; }},
  };
  for (const auto& op : binops) {
    lanes(op.got, out);
    for (int i = 0; i < L; ++i) {
      const float want = op.want(a[i], b[i], c[i]);
      expect(same(out[i], want), op.what, i, out[i], want);
    }
  }
  // isnan, ldexp, frexp1
  float m[16];
  for (int i = 0; i < L; ++i) m[i] = (i % 2) ? nan : static_cast<float>(i);
  lanes(V::select(V::isnan(V::load(m)), V::set1(1.0f), V::zero()), out);
  for (int i = 0; i < L; ++i) expect(out[i] == (i % 2 ? 1.0f : 0.0f), "isnan", i, out[i], i % 2);
  for (int e = -126; e <= 127; e += 9) {
    lanes(V::ldexp(V::set1(1.25f), V::set1(static_cast<float>(e))), out);
    expect(out[0] == std::ldexp(1.25f, e), "ldexp", 0, out[0], std::ldexp(1.25, e));
  }
  for (float x : {1e-30f, 0.3f, 1.0f, 1.999f, 2.0f, 3e5f, 1e38f}) {
    vec e;
    lanes(V::frexp1(V::set1(x), &e), out);
    float ev[16];
    lanes(e, ev);
    int want_e;
    const float want_m = 2.0f * std::frexp(x, &want_e);
    expect(out[0] == want_m, "frexp1 mantissa", 0, out[0], want_m);
    expect(ev[0] == want_e - 1, "frexp1 exponent", 0, ev[0], want_e - 1);
  }
  // Reductions.
  float s = 0.0f, mx = -inf, mn = inf;
  for (int i = 0; i < L; ++i) {
    s += a[i];
    mx = a[i] > mx ? a[i] : mx;
    mn = a[i] < mn ? a[i] : mn;
  }
  expect(std::fabs(V::reduce_add(va) - s) <= 1e-6f, "reduce_add", 0, V::reduce_add(va), s);
  expect(V::reduce_max(va) == mx, "reduce_max", 0, V::reduce_max(va), mx);
  expect(V::reduce_min(va) == mn, "reduce_min", 0, V::reduce_min(va), mn);
  // load_n: consecutive vectors.
  float seq[80];
  for (int i = 0; i < 80; ++i) seq[i] = static_cast<float>(i);
  vec v4[4];
  V::load_n<4>(seq + 1, v4);
  for (int j = 0; j < 4; ++j) {
    lanes(v4[j], out);
    for (int i = 0; i < L; ++i) expect(out[i] == 1 + j * L + i, "load_n", i, out[i], 1 + j * L + i);
  }
}

// fmadd_lane<l>(b, a, acc) = acc + b * a[l], where the ISA has it.
template <class W, int l>
void check_lane() {
  if constexpr (W::kLaneFma) {
    float a[16], b[16], acc[16], out[16];
    for (int i = 0; i < L; ++i) {
      a[i] = 1.0f + i;
      b[i] = 0.5f * i - 1.0f;
      acc[i] = 3.0f;
    }
    lanes(W::template fmadd_lane<l>(W::load(b), W::load(a), W::load(acc)), out);
    for (int i = 0; i < L; ++i) {
      const float want = std::fma(b[i], a[l], acc[i]);
      expect(out[i] == want, "fmadd_lane", i, out[i], want);
    }
    if constexpr (l + 1 < L) check_lane<W, l + 1>();
  }
}

}  // namespace

int main() {
  check_partial();
  check_ops();
  check_lane<V, 0>();
  std::printf("%s: %d failures\n", V::kName, failures);
  return failures == 0 ? 0 : 1;
}
