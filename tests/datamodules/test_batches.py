"""Batches: sharding across ranks, and exact mid-epoch save/restore."""
import torch

from datamodules.batches import Batches

N = 103


def make(rank=0, world=1, train=True, augment=False, batch_size=10, **aug):
    x = torch.arange(N, dtype=torch.uint8).view(N, 1, 1, 1).expand(N, 3, 32, 32).contiguous()
    y = torch.arange(N)
    return Batches(x, y, torch.arange(N), batch_size, (0, 0, 0), (1, 1, 1), train=train, augment=augment,
                   seed=7, rank=rank, world_size=world, **aug)


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


def test_alternating_flips_show_each_image_the_other_way_each_epoch():
    """airbench94's flips: epoch 0 mirrors a seeded half; every next epoch mirrors each image the other way."""
    x = torch.arange(N * 3 * 32 * 32).view(N, 3, 32, 32) % 251  # every image distinct and not symmetric
    run = Batches(x.to(torch.uint8), torch.arange(N), torch.arange(N), 10, (0, 0, 0), (1, 1, 1), train=True,
                  augment=True, crop_padding=0, flips="alternate", seed=7)
    seen = []
    for _ in range(3):
        mirrored = {}
        for xb, yb in run:
            for img, label in zip(xb, yb.tolist()):
                src = x[label].float()
                assert torch.equal(img, src) or torch.equal(img, src.flip(2))
                mirrored[label] = not torch.equal(img, src)
        seen.append(mirrored)
    both = set(seen[0]) & set(seen[1]) & set(seen[2])
    assert len(both) > 60
    assert all(seen[0][i] != seen[1][i] and seen[0][i] == seen[2][i] for i in both)
    assert 0.25 < sum(seen[0][i] for i in both) / len(both) < 0.75


def test_reflect_crops_and_alternating_flips_resume_mid_epoch():
    """A continued run draws what the uninterrupted one drew, across epoch boundaries."""
    x = (torch.arange(N * 3 * 32 * 32).view(N, 3, 32, 32) % 251).to(torch.uint8)  # crops and flips show

    def fresh():
        return Batches(x, torch.arange(N), torch.arange(N), 10, (0, 0, 0), (1, 1, 1), train=True, augment=True,
                       crop_padding=2, crop_pad="reflect", flips="alternate", seed=7)
    ref = fresh()
    reference = [xb for _ in range(3) for xb, _ in ref]
    run = fresh()
    for _ in run:  # epoch 0
        pass
    it = iter(run)
    for _ in range(3):  # and 3 batches into epoch 1 (10 batches an epoch)
        next(it)
    resumed = fresh()
    resumed.load_state_dict(run.state_dict())
    rest = [xb for _ in range(2) for xb, _ in resumed]
    assert len(rest) == len(reference) - 13 and all(torch.equal(a, b) for a, b in zip(rest, reference[13:]))


def test_clean_is_the_splits_first_images_unaugmented():
    run = make(augment=True, crop_padding=2, crop_pad="reflect", flips="alternate")
    clean = run.clean(5)
    assert clean.dtype == torch.float32 and torch.equal(clean[:, 0, 0, 0], torch.arange(5).float())


def test_steps_per_call_hands_out_k1s_batches_in_lists_of_k_across_epochs():
    """--steps-per-call 4: 103 images at batch 10 are 10 batches an epoch, so a list of 4 runs on into the
    next epoch; the batches, flattened, are K = 1's over three epochs, augmented alike."""
    one, four = make(augment=True), make(augment=True, steps_per_call=4)
    assert len(four) == 2  # a Lightning epoch: 10 // 4 lists
    flat = [b for _ in range(2) for b in one]  # two epochs of K = 1
    lists = [chunk for _ in range(2) for chunk in four]  # two Lightning epochs: 16 batches
    assert all(len(chunk) == 4 for chunk in lists)
    for (x1, y1), (x4, y4) in zip(flat, [b for chunk in lists for b in chunk]):
        assert torch.equal(x1, x4) and torch.equal(y1, y4)
    assert four.state_dict() == {"epoch": 1, "batch": 6}  # where the next batch comes from


def test_steps_per_call_resumes_from_its_state_mid_list_of_epochs():
    whole = make(steps_per_call=4)
    chunks = [c for _ in range(3) for c in whole]
    part = make(steps_per_call=4)
    next(iter(part)), next(iter(part))  # two lists, one per Lightning epoch started
    restored = make(steps_per_call=4)
    restored.load_state_dict(part.state_dict())
    rest = [c for c in restored] + [c for c in restored]
    assert all(torch.equal(a[1], b[1]) for ca, cb in zip(chunks[2:], rest) for a, b in zip(ca, cb))
    assert len(rest) == 4


def test_steps_per_call_leaves_evaluation_batches_alone():
    assert len(make(train=False, steps_per_call=4)) == 11 and isinstance(next(iter(make(train=False))), tuple)
