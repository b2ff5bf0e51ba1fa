"""Preloaded by the fork server (see `worker.worker_context`), and imported by nothing else.

Importing the task's module and the estimators here means scikit-learn, pandas and pyarrow are
imported once, in the fork server, and every worker forked from it starts with them loaded. The
fork server also asks to be killed when the process that started it dies, so that a main
process killed without a chance to clean up (SIGKILL, the OOM killer) leaves no fork server
behind; its workers then follow it through their own parent-death signal.
(The kernel ties that signal to the thread that started the fork server: one started from a
thread that ends stops with it, and the pool starts a new one when it next needs it.)
"""

from pipeline.backtest.models import import_estimators
from pipeline.execution import jobs  # noqa: F401  (imported for its imports)
from pipeline.execution.worker import die_with_parent

die_with_parent()
import_estimators()
