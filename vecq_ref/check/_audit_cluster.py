"""The audit on a Dask distributed cluster (``dask`` and ``distributed``: the ``cluster`` extra).

Every row block of every tensor is one task (:func:`vecq_ref.check._audit_task.run_block`),
plus one task per tensor for the facts and the diagnosis, run on workers that see the same
paths. Results are assembled on the client in the plan's order, so the rows are those of the
serial run, bit for bit (each per-row sum depends on its row alone; totals are
:func:`math.fsum`). A worker that dies mid-run has its tasks rerun by the scheduler
(``distributed.scheduler.allowed-failures``); the tasks are pure functions of their arguments,
so a rerun gives the same bits.

Starting a cluster by hand (every machine sees the checkpoint paths)::

    dask scheduler                       # prints tcp://HOST:8786
    dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1     # on each machine
    vecq-ref audit model.safetensors model-q4_0.gguf --scheduler tcp://HOST:8786
"""

from __future__ import annotations

from . import _audit_task as T

EXTRA = 'pip install "vecq_ref[cluster]"'


def _client(workers, scheduler):
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError(f"running the audit on Dask needs dask and distributed: {EXTRA}") \
            from exc
    if scheduler is not None:
        return Client(scheduler), None
    import os

    # One Dask thread per worker; the kernels' own threads share the cores among the workers.
    # The dashboard on a free port: the fixed 8787 fails to start while another cluster holds it.
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", env={"NUMBA_NUM_THREADS": threads})
    return Client(cluster), cluster


def _tensor_facts(spec, sums_by_block, prep):
    """Facts and the diagnosis of the whole tensor (one task per tensor, after its blocks)."""
    for p in sums_by_block:
        if p["kind"] != "ok":
            return None
    return T.info_of(spec, prep), T.diagnose(spec, prep)


def run_on_cluster(specs, finished, *, workers=None, scheduler=None):
    """Run ``specs`` (TensorSpec) on a cluster; call ``finished(spec, record)`` per tensor as
    each completes, in plan order."""
    from distributed import as_completed

    client, cluster = _client(workers, scheduler)
    try:
        futures, facts, by_fact = [], [], {}
        for i, spec in enumerate(specs):
            prep = client.submit(T.prepare, spec, pure=False)
            blocks = [client.submit(T.run_block, spec, r0, r1, prep, pure=False)
                      for r0, r1 in spec.blocks]
            fact = client.submit(_tensor_facts, spec, blocks, prep, pure=False)
            futures.append(blocks)
            facts.append(fact)
            by_fact[fact.key] = i
        ready = {}
        nxt = 0
        for fut in as_completed(facts):
            ready[by_fact[fut.key]] = fut
            while nxt in ready:
                spec = specs[nxt]
                parts = client.gather(futures[nxt])
                got = ready.pop(nxt).result()
                if got is None:
                    rec = next(p for p in parts if p["kind"] != "ok")
                else:
                    info, line = got
                    rec = T.assemble(spec, parts, info, lambda sums, line=line: line)
                finished(spec, rec)
                futures[nxt] = None
                nxt += 1
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
