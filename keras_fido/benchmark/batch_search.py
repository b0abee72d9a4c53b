"""The largest batch that fits: doubling, then bisection (pure search)."""


def extrapolate_bytes(points, batch):
    """Memory at `batch` on the line through the two largest measured
    batches, or None with fewer than two.

    Args:
        points: list of `(batch_size, required_bytes)`.
        batch: int. The batch to predict.
    """
    points = sorted(set(points))
    if len(points) < 2:
        return None
    (b1, r1), (b2, r2) = points[-2:]
    slope = max((r2 - r1) / (b2 - b1), 0.0)
    return r2 + slope * (batch - b2)


def search_max_batch(measure, budget_bytes, cap=1024, precheck=None):
    """Largest batch in `[1, cap]` that `measure` says fits `budget_bytes`.

    Doubles from 1 until a miss or the cap, then bisects between the last
    fit and the first miss. Assumes memory grows with the batch.

    Args:
        measure: callable `batch -> (required bytes or None, reason)`;
            `None` bytes (with a reason) is a miss.
        budget_bytes: int. The budget.
        cap: int. The largest batch tried.
        precheck: optional callable `batch -> reason or None`; a reason
            makes that batch a miss without calling `measure`.

    Returns:
        A dict with `max_batch` (0 if batch 1 does not fit), `cap`,
        `cap_hit` (the cap itself fits, so the true maximum may be larger),
        `limited_by` (the reason of the smallest miss: `"budget"`,
        `"analytic cache"`, `"machine memory (...)"`, `"timeout"`,
        `"crash: ..."`, or `"cap"`), and
        `trials`, a list of `{batch_size, required_bytes, fits, reason}` in
        the order run.
    """
    trials = []
    verdicts = {}

    def fits(batch):
        reason = precheck(batch) if precheck else None
        required = None
        if reason is None:
            required, reason = measure(batch)
            if required is not None and required > budget_bytes:
                reason = "budget"
        ok = reason is None
        trials.append(
            {
                "batch_size": batch,
                "required_bytes": required,
                "fits": ok,
                "reason": reason,
            }
        )
        verdicts[batch] = reason
        return ok

    low, high = 0, None  # Largest fit, smallest miss.
    batch = 1
    while True:
        if fits(batch):
            low = batch
            if batch >= cap:
                break
            batch = min(2 * batch, cap)
        else:
            high = batch
            break
    if high is not None:
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
    return {
        "max_batch": low,
        "cap": cap,
        "cap_hit": high is None,
        "limited_by": "cap" if high is None else verdicts[high],
        "trials": trials,
    }
