"""The map of remembered places and the reasoning over it, on hand-made data with known answers."""

import numpy as np
import pytest

from worldjepa.memory.graph import MemoryMap, build_map, calibrate, greedy_landmarks, temporal_edges
from worldjepa.memory.reasoning import Router


def test_dijkstra_finds_the_shortest_route_on_a_hand_built_graph():
    #   0 --1--> 1 --1--> 2 --1--> 3        and a direct 0 --5--> 3, a dead end 1 -> 4
    z = np.eye(5, dtype=np.float32)
    edges = np.array([[0, 1], [1, 2], [2, 3], [0, 3], [1, 4]])
    m = MemoryMap(z, edges, np.array([1.0, 1.0, 1.0, 5.0, 1.0]), radius=0.5)
    assert m.route(0, 3) == ([0, 1, 2, 3], 3.0)
    assert m.route(3, 0) is None  # the edges are directed: nothing leads back
    assert m.route(2, 2) == ([2], 0.0)
    m.penalize(1, 2, factor=10.0)  # the leg failed: the direct edge is now cheaper
    assert m.route(0, 3) == ([0, 3], 5.0)
    assert m.localize(np.array([0, 0, 0.9, 0.1, 0], np.float32))[0] == 2


def test_landmarks_cover_every_entry_and_stay_apart():
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 10, (2000, 2)).astype(np.float32)
    marks = greedy_landmarks(z, radius=1.0)
    d_all = np.linalg.norm(z[:, None] - z[marks][None], axis=2)  # (N, K)
    assert d_all.min(1).max() <= 1.0 + 1e-5  # every entry within the radius of a landmark
    d_marks = np.linalg.norm(z[marks][:, None] - z[marks][None], axis=2) + np.eye(len(marks)) * 99
    assert d_marks.min() > 1.0  # landmarks are more than the radius apart
    assert 40 < len(marks) < 200  # a 10 x 10 square at radius 1: about 100 / (0.8 pi r^2)-ish


def test_temporal_edges_follow_the_recordings_only():
    assign = np.array([0, 0, 1, 1, 2, 2, 5, 5, 6])  # episode 0: 0 -> 1 -> 2; episode 1: 5 -> 6
    episodes = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    steps = np.array([0, 1, 2, 3, 4, 5, 0, 1, 2])
    edges, weights = temporal_edges(assign, episodes, steps, max_gap=3)
    got = {tuple(e): w for e, w in zip(edges.tolist(), weights)}
    assert got == {(0, 1): 1.0, (1, 2): 1.0, (0, 2): 3.0, (5, 6): 1.0}  # 0 -> 2 in 3 steps; never across episodes
    edges, _ = temporal_edges(assign, episodes, steps, max_gap=2)
    assert {tuple(e) for e in edges.tolist()} == {(0, 1), (1, 2), (5, 6)}
    assert calibrate(np.arange(9, dtype=np.float32)[:, None], episodes, steps, gap=2) == pytest.approx(2.0)


def _two_rooms(n_episodes=200, length=120, seed=0):
    """Random walks in a plane cut by a wall |x| < 1 (a door at |y| < 1), the "latent" being the position."""
    rng = np.random.default_rng(seed)
    z, ep, st = [], [], []
    for e in range(n_episodes):
        p, v = rng.uniform(-5, 5, 2), np.zeros(2)
        for t in range(length):
            v = 0.8 * v + 0.4 * rng.standard_normal(2)
            p = step(p, v)
            z.append(p.copy())
            ep.append(e)
            st.append(t)
    return np.asarray(z, np.float32), np.asarray(ep), np.asarray(st)


def step(p, v, speed=0.5):
    """Move by ``v`` (at most ``speed``); the wall |x| < 1 stops it outside the door |y| < 1."""
    n = np.linalg.norm(v)
    q = np.clip(p + (v * speed / n if n > speed else v), -5, 5)
    if abs(q[0]) < 1.0 and abs(q[1]) > 1.0:  # into the wall: slide along it, or stay
        q = np.array([p[0], q[1]]) if not (abs(p[0]) < 1.0 and abs(q[1]) > 1.0) else p.copy()
    return q


def test_the_router_leads_around_the_wall_where_a_straight_line_is_stuck():
    z, ep, st = _two_rooms()
    r = calibrate(z, ep, st, gap=2)
    marks, edges, weights, _ = build_map(z, ep, st, radius=r, max_gap=2)
    start, goal = np.array([-3.0, 4.0]), np.array([3.0, 4.0])  # the door is at y = 0

    def drive(router):
        p = start.copy()
        if router is not None:
            assert router.start(p, goal)
        for _ in range(400):
            target = goal if router is None else router.subgoal(p)
            target = goal if target is None else target
            p = step(p, target - p)
            if np.linalg.norm(p - goal) < 0.3:
                return True
        return False

    assert not drive(None)  # straight at the goal: pressed against the wall
    # a straight-line driver (no world model to plan around a corner): subgoals one landmark ahead
    router = Router(MemoryMap(z[marks], edges, weights, radius=r), lookahead=1.0)
    assert drive(router)
    assert router.info["routed"] and router.info["route_nodes"] > 3 and router.info["reached"] > 0
    route_pts = z[marks][router.route]
    assert np.abs(route_pts[np.abs(route_pts[:, 0]) < 1.0, 1]).max() < 1.5  # it crosses the wall at the door


def test_an_unreachable_goal_falls_back_and_says_so():
    z = np.array([[0, 0], [1, 0], [10, 10]], np.float32)
    router = Router(MemoryMap(z, np.array([[0, 1]]), np.array([1.0]), radius=0.5))
    assert not router.start(np.array([0.0, 0.0]), np.array([10.0, 10.0]))
    assert router.info["fallback"] and router.subgoal(np.zeros(2)) is None


def test_a_stalled_leg_is_penalised_and_the_route_searched_again():
    # two ways from 0 to 3: via 1 (cheap, but the agent cannot get past 1) and via 2
    z = np.array([[0, 0], [1, 0], [0, 1], [2, 2]], np.float32)
    edges = np.array([[0, 1], [1, 3], [0, 2], [2, 3]])
    m = MemoryMap(z, edges, np.array([1.0, 1.0, 2.0, 2.0]), radius=0.3)
    router = Router(m, lookahead=1.0, stall=3)
    assert router.start(z[0], z[3]) and router.route == [0, 1, 3]
    here = z[0] + 0.05
    for _ in range(3):  # no progress toward 1
        router.subgoal(here)
    assert router.info["replans"] == 1 and router.route == [0, 2, 3]
    np.testing.assert_array_equal(router.subgoal(here), z[2])


def test_the_map_grows_online_from_what_the_agent_sees():
    """A map from recordings that never went through the door: the goal in the other room cannot
    be routed to. The agent walks through the door once (learning new places and the moves
    between them); the next time the same goal is routed, through the door: the map kept what
    it learned."""
    z, ep, st = _two_rooms()
    crossed = np.unique(ep[np.abs(z[:, 0]) < 1.0])  # episodes that entered the doorway
    keep = ~np.isin(ep, crossed)
    r = calibrate(z, ep, st, gap=2)
    marks, edges, weights, _ = build_map(z[keep], ep[keep], st[keep], radius=r, max_gap=2)
    m = MemoryMap(z[keep][marks], edges, weights, radius=r, info={"edge_steps": 2})
    k0, e0 = m.size, len(m.edges)
    start, goal = np.array([-3.0, 4.0]), np.array([3.0, 4.0])
    frozen = Router(m, lookahead=1.0)
    assert not frozen.start(start, goal)  # nothing of the right room is remembered: flat

    router = Router(m, lookahead=1.0, learn=True)
    assert not router.start(start, goal)
    walk = [np.array([-3.0, y]) for y in np.arange(4.0, -0.1, -0.4)]  # down the left room,
    walk += [np.array([x, 0.0]) for x in np.arange(-3.0, 3.1, 0.4)]  # through the door,
    walk += [np.array([3.0, y]) for y in np.arange(0.0, 4.1, 0.4)]  # up the right room
    for t, p in enumerate(walk):
        router.subgoal(p.astype(np.float32), step=t)
    info = router.info
    assert info["learned_landmarks"] > 0 and info["learned_edges"] > 0
    assert m.size == k0 + info["learned_landmarks"] and len(m.edges) > e0
    assert info["routed"]  # once the map reached the goal's place, it searched again and found a route
    router.reset()  # the next episode: same map object, grown
    assert router.start(start, goal)
    pts = m.z[router.route]
    assert pts[-1, 0] > 1.0 and np.abs(pts[np.abs(pts[:, 0]) < 1.0, 1]).max() < 1.5  # through the door
    # nothing was learned without step numbers or with learn off
    k1 = m.size
    Router(m, lookahead=1.0).subgoal(np.array([0.0, -4.0], np.float32), step=0)
    assert m.size == k1


def test_link_adds_an_edge_or_lowers_its_weight_and_undoes_a_penalty():
    m = MemoryMap(np.zeros((3, 2), np.float32), np.array([[0, 1]]), np.array([5.0]), radius=0.5)
    assert m.link(0, 1, 3) and m.edge_weight(0, 1) == 3.0
    assert not m.link(0, 1, 4) and m.edge_weight(0, 1) == 3.0
    assert m.link(1, 2, 2) and m.route(0, 2) == ([0, 1, 2], 5.0)
    m.penalize(0, 1, 4.0)
    assert m.edge_weight(0, 1) == 12.0 and m.link(0, 1, 3) and m.edge_weight(0, 1) == 3.0  # it did succeed
    i = m.add_landmark(np.array([9.0, 9.0]))
    assert i == 3 and m.localize(np.array([8.9, 9.0]))[0] == 3


def test_connectivity_counts_the_places_joined_both_ways():
    from worldjepa.memory.graph import connectivity

    ring = np.array([[0, 1], [1, 2], [2, 0]])
    assert connectivity(3, ring) == {"components": 1, "largest_component": 1.0, "two_way_pairs": 1.0}
    one_way = np.concatenate([ring, [[2, 3]]])  # 3 is reached but never left: its own part
    c = connectivity(4, one_way)
    assert c["components"] == 2 and c["largest_component"] == 0.75 and c["two_way_pairs"] == (9 + 1) / 16
    assert connectivity(2, np.zeros((0, 2), np.int64))["two_way_pairs"] == 0.5  # each place only with itself


def test_a_route_starts_at_the_nearest_place_with_a_way_out():
    """A learning agent adds the place it stands on (edges in, none out yet): the route must start
    at a close place that leads on, not give up. A far place with a way out is not taken."""
    z = np.array([[0, 0], [1, 0], [2, 0], [0.6, 0], [9, 9]], np.float32)  # 3: just added, 4: far away
    edges = np.array([[0, 1], [1, 2], [0, 3], [4, 2]])
    m = MemoryMap(z, edges, np.array([1.0, 1.0, 1.0, 1.0]), radius=0.5)
    assert m.route(3, 2) is None and m.route([3, 1, 0], 2) == ([1, 2], 1.0)
    assert m.route([3], 2) is None and m.route([2, 0], 2) == ([2], 0.0)
    router = Router(m)
    assert router.start(np.array([0.62, 0.0]), z[2]) and router.route == [1, 2]  # 3 is nearest, 1 leads on
    assert m.route([1], [3, 2]) == ([1, 2], 1.0)  # 3 is nearer the goal, but nothing leads from 1 to it
    assert m.route([1], [3, 4]) is None
    # the goal nearest a place that only leads away (an episode's first place): the route ends
    # at the next nearest place, which it reaches
    line = MemoryMap(np.array([[0, 0], [1, 0], [2, 0], [2.3, 0]], np.float32), np.array([[0, 1], [1, 2], [3, 2]]),
                     np.ones(3), radius=0.5)
    into = Router(line)
    assert into.start(np.zeros(2), np.array([2.35, 0.0])) and into.route == [0, 1, 2]
    only_far = MemoryMap(z, np.array([[0, 3], [4, 2]]), np.array([1.0, 1.0]), radius=0.5)
    assert not Router(only_far).start(np.array([0.6, 0.0]), z[2])  # only 4 leads on, and it is far: flat
