"""examples/multinode/placement_2x8.yaml resolves to the documented 2 x 8 GPU layout."""


def test_placement_2x8_spans_both_nodes(example, capsys):
    mod = example("multinode/check_placement.py")
    cluster, p = mod.load_placement()
    assert (cluster.num_nodes, cluster.gpus_per_node, cluster.ray_address) == (2, 8, "auto")
    assert (p.world_size("env"), p.world_size("rollout"), p.world_size("actor")) == (8, 8, 16)
    # env 0-3,8-11: rank 4 is global GPU 8 = node 8 // 8 = 1, local GPU 8 % 8 = 0.
    env4 = p.processes("env")[4]
    assert (env4.node, env4.local_gpus, env4.global_gpus) == (1, (0,), (8,))
    # env rank r feeds rollout rank r (n_env == n_rollout): every pair on one node.
    for e, r in zip(p.processes("env"), p.processes("rollout")):
        assert e.node == r.node and r.global_gpus[0] == e.global_gpus[0] + 4
    assert p.gpus_of("actor") == tuple(range(16))
    assert not set(p.gpus_of("env")) & set(p.gpus_of("rollout"))
    assert p.components_sharing_gpus() == {("env", "actor"): (0, 1, 2, 3, 8, 9, 10, 11),
                                           ("rollout", "actor"): (4, 5, 6, 7, 12, 13, 14, 15)}
    assert mod.main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("placement on 2 node(s) x 8 gpus")
    assert "node 0: 4 env, 4 rollout, 8 actor" in out and "node 1: 4 env, 4 rollout, 8 actor" in out
