"""A stand-in for an estimator's module in pool tests: importing it takes 0.2 s, as importing
scikit-learn takes a second, and it is imported only where a task builds its estimator."""

import time

time.sleep(0.2)


class FakeEstimator:
    pass
