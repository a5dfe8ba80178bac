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

import contextlib
import logging
import os

from . import _audit_task as T

#: Loggers quieted below ERROR while the audit runs a cluster it started itself (distributed's
#: shutdown WARNINGs — "Worker process still alive … killing", cancelled tasks — are noise).
_LOGGERS = ("distributed", "asyncio", "tornado")
#: The worker processes, which read their logging levels from the environment, say nothing at
#: all: what they log at ERROR is the teardown's ("Failed to communicate with scheduler during
#: heartbeat" when the scheduler closes first, a loaded machine's race), and a task's own error
#: reaches the caller as the exception the client raises.
_ENV = {"DASK_LOGGING__DISTRIBUTED": "critical", "DASK_LOGGING__TORNADO": "critical"}


@contextlib.contextmanager
def _quiet(level=logging.ERROR):
    """Loggers of ``_LOGGERS`` at ``level`` at least, and ``_ENV`` set, restored after."""
    saved = {n: logging.getLogger(n).level for n in _LOGGERS}
    env = {k: os.environ.get(k) for k in _ENV}
    try:
        for n in _LOGGERS:
            logger = logging.getLogger(n)
            if logger.getEffectiveLevel() < level:
                logger.setLevel(level)
        os.environ.update(_ENV)
        yield
    finally:
        for n, lvl in saved.items():
            logging.getLogger(n).setLevel(lvl)
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

EXTRA = 'pip install "vecq_ref[cluster]"'


def _client(workers, scheduler):
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError(f"running the audit on Dask needs dask and distributed: {EXTRA}") \
            from exc
    if scheduler is not None:
        return Client(scheduler), None
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

    if scheduler is not None:  # someone else's cluster: its logging is theirs
        client, cluster = _client(workers, scheduler)
        try:
            _run(client, specs, finished, as_completed)
        finally:
            client.close()
        return
    with _quiet():
        client, cluster = _client(workers, scheduler)
        try:
            _run(client, specs, finished, as_completed)
        except BaseException:
            # Interrupted or failed: the teardown's cancellations and closed comms say nothing
            # the caller needs; errors of the teardown must not hide the cause.
            logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
            _close(client, cluster)
            raise
        _close(client, cluster)


def _close(client, cluster):
    """Client first (it stops asking), then the cluster; neither raises."""
    with contextlib.suppress(Exception):
        client.close()
    with contextlib.suppress(Exception):
        cluster.close()


def _run(client, specs, finished, as_completed):
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
