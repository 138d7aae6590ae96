"""A worker pool: jobs on one channel, results on another, a WaitGroup to close the results,
select with a timeout for a job that takes too long.

Run: python python/examples/worker_pool.py (see hello.py for running from a checkout).
"""

import gostack

WORKERS, JOBS = 4, 20


def worker(wid, jobs, results, wg):
    for n in jobs:                    # until jobs is closed and drained
        gostack.sleep(0.001 * (n % 3))  # some jobs take longer
        results.send((wid, n, n * n))
    wg.done()


def main():
    jobs, results, wg = gostack.Chan(JOBS), gostack.Chan(), gostack.WaitGroup()
    wg.add(WORKERS)
    for wid in range(WORKERS):
        gostack.go(worker, wid, jobs, results, wg)

    def feed():
        with jobs:                    # closes jobs when done: the workers' loops end
            for n in range(JOBS):
                jobs.send(n)

    def closer():
        wg.wait()
        results.close()

    squares, by_worker = {}, {}

    def collect():
        while True:
            try:
                _, value = gostack.select([results], timeout=5.0)
            except gostack.Timeout:
                raise SystemExit("a job took more than 5 s")
            if value is gostack.CLOSED:
                return
            wid, n, sq = value
            squares[n] = sq
            by_worker[wid] = by_worker.get(wid, 0) + 1

    for fn in (feed, closer, collect):
        gostack.go(fn)
    gostack.run()
    assert squares == {n: n * n for n in range(JOBS)}, squares
    print(f"{JOBS} jobs done by {len(by_worker)} workers:", dict(sorted(by_worker.items())))


if __name__ == "__main__":
    main()
