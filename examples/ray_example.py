"""Ray: a store put into Ray's object store is read by tasks without a copy (protocol-5 pickle)."""

import numpy as np
import ray

import compactstore as cs


class Point(cs.StaticStore):
    x: cs.f64
    y: cs.f64


@ray.remote
def norm_sum(store: Point) -> float:
    # The store's buffers are Ray's shared memory: read-only here, not copied.
    return float(np.hypot(np.asarray(store.x), np.asarray(store.y)).sum())


if __name__ == "__main__":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    pts = Point(size=1_000_000)
    pts.x[:] = 3.0
    pts.y[:] = 4.0
    ref = ray.put(pts)  # one copy into the object store, shared by every task on this node
    print(sum(ray.get([norm_sum.remote(ref) for _ in range(4)])))  # 20000000.0
    ray.shutdown()
