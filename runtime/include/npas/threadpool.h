// A small fork-join thread pool: the calling thread takes part, workers spin briefly then
// sleep. parallel_for splits [0, n) into contiguous chunks, one per thread.
#ifndef NPAS_THREADPOOL_H_
#define NPAS_THREADPOOL_H_

#include <cstdint>
#include <functional>
#include <memory>

namespace npas {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;
  // fn(begin, end, thread_index) over a static partition of [0, n) into at most size() chunks.
  void parallel_for(std::int64_t n,
                    const std::function<void(std::int64_t, std::int64_t, int)>& fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace npas

#endif  // NPAS_THREADPOOL_H_
