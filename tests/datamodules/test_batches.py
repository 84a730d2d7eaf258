"""Batches: sharding across ranks, and exact mid-epoch save/restore."""
import torch

from datamodules.batches import Batches

N = 103


def make(rank=0, world=1, train=True, augment=False, batch_size=10):
    x = torch.arange(N, dtype=torch.uint8).view(N, 1, 1, 1).expand(N, 3, 32, 32).contiguous()
    y = torch.arange(N)
    return Batches(x, y, torch.arange(N), batch_size, (0, 0, 0), (1, 1, 1), train=train, augment=augment,
                   seed=7, rank=rank, world_size=world)


def labels(batches):
    return torch.cat([y for _, y in batches])


def test_ranks_get_disjoint_equal_shards_of_the_same_permutation():
    shards = [labels(make(rank, 2)) for rank in range(2)]
    assert len(make(0, 2)) == len(make(1, 2)) == 5  # 103 // 2 = 51 each -> 5 full batches of 10
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_eval_shards_cover_every_image_once():
    seen = torch.cat([labels(make(rank, 3, train=False)) for rank in range(3)])
    assert sorted(seen.tolist()) == list(range(N))


def test_epochs_reshuffle_and_repeat_with_the_seed():
    a, b = make(), make()
    first, second = labels(a), labels(a)
    assert not torch.equal(first, second)
    assert torch.equal(first, labels(b)) and torch.equal(second, labels(b))


def test_a_new_epoch_starts_when_len_batches_were_taken():
    # Lightning knows len() and stops calling next() there; the generator never finishes by itself
    run = make()
    first = torch.cat([y for _, (_, y) in zip(range(len(run)), run)])
    second = labels(run)
    assert not torch.equal(first, second) and run.state_dict()["epoch"] == 1


def test_restoring_mid_epoch_continues_with_the_same_batches():
    ref = make(augment=True)
    reference = [x for x, _ in ref] + [x for x, _ in ref]  # two epochs
    run = make(augment=True)
    it = iter(run)
    for _ in range(4):
        next(it)
    state = run.state_dict()
    resumed = make(augment=True)
    resumed.load_state_dict(state)
    rest = [x for x, _ in resumed] + [x for x, _ in resumed]
    assert len(rest) == len(reference) - 4
    assert all(torch.equal(a, b) for a, b in zip(rest, reference[4:]))


def test_state_saved_on_the_last_batch_resumes_at_the_next_epoch():
    resumed = make()
    resumed.load_state_dict({"epoch": 0, "batch": len(resumed)})
    reference = make()
    labels(reference)  # epoch 0
    assert torch.equal(labels(resumed), labels(reference))  # epoch 1
