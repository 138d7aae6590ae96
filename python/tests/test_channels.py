"""Channels, select, WaitGroup and Mutex: skipped while the C API (channels branch) is absent."""

import sys

import pytest

import gostack

def test_pingpong_10000_goroutines_through_channels(gostack):
    pairs = 5000
    done = []

    def ping(a, b):
        for i in range(5):
            a.send(i)
            assert b.recv() == i + 1
        done.append(1)

    def pong(a, b):
        for _ in range(5):
            b.send(a.recv() + 1)
        done.append(1)

    chans = []
    for _ in range(pairs):
        a, b = gostack.Chan(), gostack.Chan()
        chans += [a, b]
        gostack.go(ping, a, b)
        gostack.go(pong, a, b)
    gostack.run()
    assert len(done) == 2 * pairs
    for c in chans:
        c.free()


def test_channel_refcounts(gostack):
    obj = object()
    base = sys.getrefcount(obj)
    ch = gostack.Chan(4)
    ch.send(obj)
    ch.send(obj)
    assert sys.getrefcount(obj) == base + 2  # the channel owns one reference per buffered value
    assert ch.recv() is obj
    assert sys.getrefcount(obj) == base + 1
    assert ch.try_send(obj) is True
    ch.close()
    with pytest.raises(gostack.ChannelClosed):
        ch.send(obj)
    assert sys.getrefcount(obj) == base + 2
    assert list(ch) == [obj, obj]
    assert sys.getrefcount(obj) == base
    # Values left in a freed channel are released, not leaked.
    ch2 = gostack.Chan(2)
    ch2.send(obj)
    ch2.free()
    assert sys.getrefcount(obj) == base
    # Unbuffered, across goroutines: the value outlives the sender's last reference.
    ch3 = gostack.Chan()
    got = []

    def sender():
        ch3.send([1, 2, 3])

    gostack.go(sender)
    gostack.go(lambda: got.append(ch3.recv()))
    gostack.run()
    assert got == [[1, 2, 3]]
    ch3.free()


def test_try_ops_len_and_with(gostack):
    ch = gostack.Chan(1)
    assert ch.try_recv() == (False, None)
    assert ch.try_send("a") and not ch.try_send("b")
    assert len(ch) == 1 and ch.capacity == 1
    with ch:
        pass
    assert ch.try_recv() == (True, "a")
    with pytest.raises(gostack.ChannelClosed):
        ch.recv()
    ch.free()


def test_select_semantics(gostack):
    a, b = gostack.Chan(1), gostack.Chan(1)
    assert gostack.select([a, b], default=True) == (-1, None)
    b.send("x")
    assert gostack.select([a, b]) == (1, "x")
    assert gostack.select([(a, "y"), b]) == (0, None)
    assert a.recv() == "y"
    with pytest.raises(gostack.Timeout):
        gostack.select([a], timeout=0.01)
    a.close()
    assert gostack.select([a]) == (0, gostack.CLOSED)
    obj = object()
    base = sys.getrefcount(obj)
    b.send(1)
    assert gostack.select([(b, obj)], default=True) == (-1, None)  # not sent: reference dropped
    assert sys.getrefcount(obj) == base
    a.free()
    b.recv()
    b.free()


def test_waitgroup_and_mutex(gostack):
    wg, mu = gostack.WaitGroup(), gostack.Mutex()
    counter = [0]

    def worker():
        for _ in range(10):
            with mu:
                v = counter[0]
                gostack.yield_()
                counter[0] = v + 1
        wg.done()

    def main():
        for _ in range(10):
            wg.add(1)
            gostack.go(worker)
        wg.wait()

    gostack.go(main)
    gostack.run()
    assert counter[0] == 100
    wg.free()
    mu.free()
