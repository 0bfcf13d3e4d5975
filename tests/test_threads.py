"""A store used from several threads at once is never corrupted: each call is serialised, or refused with
RuntimeError."""

import threading

import compactstore as cs


class Counters(cs.StaticStore):
    n: cs.i64
    f: cs.f64


def test_threads_writing_disjoint_slots_and_reading() -> None:
    s = Counters(64)
    for _ in range(64):
        s.next_index()
    m, f = s["n"], s["f"]
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for rep in range(2000):
                for i in range(t, 64, 4):
                    m[i] = m[i] + 1
                    f[-1 - i] = float(rep)
                    assert s.entry(i)["n"] >= 0
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert list(m) == [2000] * 64
    assert set(f) == {1999.0}
    s.validate()
