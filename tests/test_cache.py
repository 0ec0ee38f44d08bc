import threading
import time

import torch

from engine.cache import ModelCache, estimate_bytes


def _model(n: int) -> torch.nn.Linear:
    return torch.nn.Linear(n, n, bias=False)  # n*n float32 parameters


def test_second_use_does_not_load_again():
    cache = ModelCache(budget_bytes=10**9)
    calls = []
    loader = lambda: calls.append(1) or _model(8)  # noqa: E731
    with cache.use("a", loader) as first:
        pass
    with cache.use("a", loader) as second:
        pass
    assert first is second
    assert len(calls) == 1 and cache.load_count["a"] == 1


def test_concurrent_first_use_loads_once():
    cache = ModelCache(budget_bytes=10**9)
    calls = []

    def slow_loader():
        calls.append(threading.get_ident())
        time.sleep(0.2)
        return _model(8)

    seen = []

    def worker():
        with cache.use("a", slow_loader) as m:
            seen.append(id(m))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(calls) == 1
    assert len(set(seen)) == 1 and len(seen) == 6


def test_least_recently_used_is_evicted_under_budget():
    one = estimate_bytes(_model(64))
    assert one == 64 * 64 * 4
    cache = ModelCache(budget_bytes=int(one * 2.5))
    for key in ("a", "b"):
        with cache.use(key, lambda: _model(64)):
            pass
    with cache.use("a", lambda: _model(64)):  # a is now the most recently used
        pass
    with cache.use("c", lambda: _model(64)):
        pass
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.evictions == ["b"]
    assert cache.total_bytes() <= cache.budget_bytes


def test_pinned_model_is_never_evicted():
    one = estimate_bytes(_model(64))
    cache = ModelCache(budget_bytes=int(one * 1.5))
    with cache.use("a", lambda: _model(64)) as a:
        with cache.use("b", lambda: _model(64)):
            assert "a" in cache and "b" in cache  # over budget, but both are in use
        a.weight.sum()  # still usable
        # b was released while a was still in use, so b was the only one that could go
        assert "b" not in cache and "a" in cache
    assert cache.total_bytes() <= cache.budget_bytes


def test_failed_load_is_not_cached_and_can_be_retried():
    cache = ModelCache(budget_bytes=10**9)

    def broken():
        raise OSError("missing")

    try:
        with cache.use("x", broken):
            pass
    except OSError:
        pass
    assert "x" not in cache
    with cache.use("x", lambda: _model(4)) as m:
        assert m is not None


def test_report_lists_what_is_loaded():
    cache = ModelCache(budget_bytes=10**9)
    with cache.use(("illustrator", "tiny"), lambda: _model(16)):
        report = cache.report()
        assert report[0]["key"] == ("illustrator", "tiny")
        assert report[0]["bytes"] == 16 * 16 * 4 and report[0]["pinned"] is True
    assert cache.report()[0]["pinned"] is False


def test_many_threads_many_models_small_budget_stay_consistent():
    one = estimate_bytes(_model(32))
    cache = ModelCache(budget_bytes=int(one * 2.5))
    loads, errors, lock = [], [], threading.Lock()

    def loader_for(key):
        def load():
            with lock:
                loads.append(key)
            time.sleep(0.01)
            return _model(32)

        return load

    def worker(n):
        try:
            for i in range(20):
                key = "abcd"[(n + i) % 4]
                with cache.use(key, loader_for(key)) as model:
                    assert key in cache  # pinned: present for the whole block
                    model.weight.sum()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    assert not any(row["pinned"] for row in cache.report())
    assert cache.total_bytes() <= cache.budget_bytes
    assert len(loads) == sum(cache.load_count.values())
    assert len(loads) - len(cache.report()) == len(cache.evictions), "every extra load followed an eviction"


def test_a_model_bigger_than_the_budget_is_served_then_let_go():
    cache = ModelCache(budget_bytes=10)
    with cache.use("big", lambda: _model(16)) as big:
        assert big.weight.shape == (16, 16) and "big" in cache
    assert "big" not in cache and cache.total_bytes() == 0


def test_a_block_can_be_given_its_own_cache_and_the_shared_one_comes_back():
    from engine.cache import get_cache, use_cache

    shared = get_cache()
    own = ModelCache(budget_bytes=10**9)
    with use_cache(own) as given:
        assert given is own and get_cache() is own
        with get_cache().use("only-here", lambda: _model(4)):
            pass
    assert get_cache() is shared
    assert "only-here" in own and "only-here" not in shared


def test_a_separate_copy_of_a_model_is_cached_beside_the_shared_one(tmp_path):
    from engine.cache import use_cache
    from engine.device import DeviceChoice
    from engine.loading import loaded_model

    choice = DeviceChoice("cpu", torch.float32)
    loads = []
    loader = lambda location: loads.append(location) or _model(4)  # noqa: E731
    with use_cache(ModelCache(budget_bytes=10**9)) as cache:
        with loaded_model("illustrator", str(tmp_path), choice, loader) as shared:
            pass
        with loaded_model("illustrator", str(tmp_path), choice, loader, copy="bench:x") as first:
            pass
        with loaded_model("illustrator", str(tmp_path), choice, loader, copy="bench:x") as again:
            pass
        assert first is again and first is not shared
        assert len(loads) == 2 and len(cache.report()) == 2
