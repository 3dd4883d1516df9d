"""The trip-code store's time watermark: written once per second of the verifier's time, at most once per
wall second by the periodic ``observe`` (a simulation faster than real time fsyncs no more than a robot),
and always with a code check."""

from agricare.core.missions.handover import TripCodeVerifier, UsedCodeStore, issue_trip_code


def test_watermark_writes_follow_wall_time_for_the_periodic_call(tmp_path, monkeypatch):
    import agricare.core.missions.handover as ho

    store = UsedCodeStore(tmp_path / "used.json")
    v = TripCodeVerifier(bytes(range(32)), "shuttle_1", store)
    saves = []
    monkeypatch.setattr(store, "save", lambda: saves.append(store.latest_time_s))
    wall = [100.0]
    monkeypatch.setattr(ho.time, "monotonic", lambda: wall[0])
    for k in range(1, 51):               # 5 s of verifier time in 0.1 s steps, all within one wall second
        assert v.observe(0.1 * k)
    assert saves == [0.1]                # the first write, then the wall second has not passed
    wall[0] += 1.0
    assert v.observe(5.1)
    assert saves == [0.1, 5.1]           # a wall second later: the latest time is written
    assert v.observe(5.5)
    assert saves == [0.1, 5.1]           # less than a second of verifier time since
    code = issue_trip_code(bytes(range(32)), "c1", "g1", "t1", "shuttle_1", 5.0, 60.0)
    assert v.verify(code, "c1", "g1", "t1", 6.6).accepted
    assert saves[-2:] == [6.6, 6.6]      # a code check writes its time, then the used code, at once
