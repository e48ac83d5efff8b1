from mesh.manager.debounce import Debouncer


def test_nothing_pending_is_never_due():
    d = Debouncer(0.1, 0.5)
    assert not d.pending and d.deadline() is None and not d.due(100.0)


def test_due_after_quiet_period():
    d = Debouncer(0.1, 0.5)
    d.poke(1.0)
    d.poke(1.05)
    assert not d.due(1.1)
    assert d.due(1.16)
    d.fire()
    assert not d.pending


def test_a_steady_stream_is_capped_by_max_delay():
    d = Debouncer(0.1, 0.5)
    t = 0.0
    while t < 0.45:
        d.poke(t)
        assert not d.due(t)
        t += 0.05
    d.poke(0.5)
    assert d.due(0.5)  # first poke at 0.0 + max_delay


def test_an_urgent_poke_is_due_at_once_and_fire_resets_it():
    d = Debouncer(0.1, 0.5)
    d.poke(1.0)
    d.poke(1.01, urgent=True)
    assert d.due(1.01)
    d.fire()
    d.poke(2.0)
    assert not d.due(2.05)
