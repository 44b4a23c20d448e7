"""Chapter 10: masking, labels, the ignore-aware loss, prompts and the tiny masked LM."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.pretraining import (
    TinyMaskedLM,
    causal_lm_labels,
    encode_sentences,
    few_shot_prompt,
    fill_mask,
    gender_occupation_probe,
    make_occupation_corpus,
    mask_tokens,
    masked_cross_entropy,
    train_tiny_mlm,
)

MASK_ID, VOCAB = 4, 1000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hf_torch_mask_tokens(inputs, special_tokens_mask, mlm_probability, generator):
    """Hugging Face's DataCollatorForLanguageModeling.torch_mask_tokens (mask 0.8, random 0.1),
    transcribed so the test needs no download: the oracle for the exact random stream."""
    inputs = inputs.clone()
    labels = inputs.clone()
    probability_matrix = torch.full(labels.shape, mlm_probability)
    probability_matrix.masked_fill_(special_tokens_mask.bool(), value=0.0)
    masked_indices = torch.bernoulli(probability_matrix, generator=generator).bool()
    labels[~masked_indices] = -100
    indices_replaced = (
        torch.bernoulli(torch.full(labels.shape, 0.8), generator=generator).bool() & masked_indices
    )
    inputs[indices_replaced] = MASK_ID
    indices_random = (
        torch.bernoulli(torch.full(labels.shape, 0.1 / (1 - 0.8)), generator=generator).bool()
        & masked_indices
        & ~indices_replaced
    )
    random_words = torch.randint(VOCAB, labels.shape, dtype=torch.long, generator=generator)
    inputs[indices_random] = random_words[indices_random]
    return inputs, labels


def batch_with_specials(B=64, T=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (B, T), generator=g)
    special = torch.zeros(B, T, dtype=torch.bool)
    ids[:, 0], special[:, 0] = 2, True  # [CLS]
    ids[:, -1], special[:, -1] = 3, True  # [SEP]
    ids[: B // 2, -6:], special[: B // 2, -6:] = 0, True  # [PAD] tail on half of the rows
    return ids, special


def masked(ids, special, seed, p=0.15):
    g = torch.Generator().manual_seed(seed)
    return mask_tokens(
        ids,
        mask_token_id=MASK_ID,
        vocab_size=VOCAB,
        mlm_probability=p,
        special_tokens_mask=special,
        generator=g,
    )


# --- mask_tokens ---------------------------------------------------------------------------------


def test_mask_tokens_matches_hugging_face_random_stream():
    ids, special = batch_with_specials()
    inputs, labels = masked(ids, special, seed=7)
    hf_inputs, hf_labels = hf_torch_mask_tokens(
        ids, special, 0.15, torch.Generator().manual_seed(7)
    )
    torch.testing.assert_close(inputs, hf_inputs, rtol=0, atol=0)
    torch.testing.assert_close(labels, hf_labels, rtol=0, atol=0)


def test_mask_tokens_never_touches_input_or_special_tokens():
    ids, special = batch_with_specials()
    before = ids.clone()
    inputs, labels = masked(ids, special, seed=1, p=0.9)  # high rate: specials would be hit
    assert torch.equal(ids, before), "mask_tokens modified its input in place"
    assert inputs.data_ptr() != ids.data_ptr() and labels.data_ptr() != ids.data_ptr()
    assert torch.equal(inputs[special], ids[special])
    assert (labels[special] == -100).all()


def test_mask_tokens_labels_are_original_ids_where_selected_and_minus_100_elsewhere():
    ids, special = batch_with_specials()
    inputs, labels = masked(ids, special, seed=2)
    selected = labels != -100
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected]), "an unselected token was changed"
    assert labels.dtype == ids.dtype and inputs.shape == ids.shape


def test_mask_tokens_rates_80_10_10():
    ids, special = batch_with_specials(B=512, T=64)
    inputs, labels = masked(ids, special, seed=3)
    selected = labels != -100
    n = int(selected.sum())
    rate = n / int((~special).sum())
    assert abs(rate - 0.15) < 0.006, f"selection rate {rate:.4f}, expected 0.15"
    to_mask = (inputs == MASK_ID) & selected
    unchanged = (inputs == ids) & selected
    other = selected & ~to_mask & ~unchanged  # replaced by a random (different) id
    # a random draw equals the original with chance 1/V, so "unchanged" is 10 % + a hair
    assert abs(int(to_mask.sum()) / n - 0.8) < 0.02
    assert abs(int(other.sum()) / n - 0.1) < 0.015
    assert abs(int(unchanged.sum()) / n - 0.1) < 0.015
    assert (inputs[other] >= 0).all() and (inputs[other] < VOCAB).all()


def test_mask_tokens_deterministic_given_generator():
    ids, special = batch_with_specials()
    a = masked(ids, special, seed=11)
    b = masked(ids, special, seed=11)
    c = masked(ids, special, seed=12)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_mask_tokens_bad_input():
    ids, special = batch_with_specials(B=2, T=4)
    with pytest.raises(ValueError, match="shape"):
        mask_tokens(ids, mask_token_id=4, vocab_size=10, special_tokens_mask=special[:, :2])
    with pytest.raises(ValueError, match="mlm_probability"):
        mask_tokens(ids, mask_token_id=4, vocab_size=10, mlm_probability=15)
    with pytest.raises(TypeError, match="integer"):
        mask_tokens(ids.float(), mask_token_id=4, vocab_size=10)
    with pytest.raises(TypeError):
        mask_tokens(ids, 4, 10)  # the options are keyword-only


# --- causal LM labels ----------------------------------------------------------------------------


def test_causal_lm_labels_hand_checked_with_padding():
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    expected = torch.tensor([[6, 7, 8, -100], [10, -100, -100, -100]])
    assert torch.equal(causal_lm_labels(ids, mask), expected)
    # without a mask the padding id 0 would be a target
    assert torch.equal(causal_lm_labels(ids), torch.tensor([[6, 7, 8, -100], [10, 0, 0, -100]]))


def test_causal_lm_labels_left_padding_masks_targets_not_inputs():
    ids = torch.tensor([[0, 0, 5, 6]])
    mask = torch.tensor([[0, 0, 1, 1]])
    # position 1 (an input pad) predicts the first real token 5; pad targets are skipped
    assert torch.equal(causal_lm_labels(ids, mask), torch.tensor([[-100, 5, 6, -100]]))


def test_causal_lm_labels_do_not_modify_input_and_check_shapes():
    ids = torch.tensor([[1, 2, 3]])
    causal_lm_labels(ids, torch.ones(1, 3, dtype=torch.long))
    assert torch.equal(ids, torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match="attention_mask"):
        causal_lm_labels(ids, torch.ones(1, 2))


# --- masked cross-entropy ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(13,), (3, 7)], ids=["2-D logits", "3-D logits"])
def test_masked_cross_entropy_matches_torch(shape):
    g = torch.Generator().manual_seed(0)
    V = 11
    logits = (torch.randn(*shape, V, generator=g) * 3).requires_grad_()
    labels = torch.randint(V, shape, generator=g)
    labels[torch.rand(shape, generator=g) < 0.4] = -100
    ours = masked_cross_entropy(logits, labels)
    theirs = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(ours, theirs)
    (g_ours,) = torch.autograd.grad(ours, logits)
    (g_theirs,) = torch.autograd.grad(theirs, logits)
    torch.testing.assert_close(g_ours, g_theirs)


def test_masked_cross_entropy_mean_over_kept_positions_only():
    # uniform logits: every kept position costs log V; a mean over ALL positions would halve it
    logits = torch.zeros(1, 4, 8)
    labels = torch.tensor([[3, -100, 5, -100]])
    torch.testing.assert_close(masked_cross_entropy(logits, labels), torch.tensor(math.log(8)))
    custom = torch.tensor([[3, 0, 5, 0]])
    torch.testing.assert_close(
        masked_cross_entropy(logits, custom, ignore_index=0), torch.tensor(math.log(8))
    )


def test_masked_cross_entropy_all_ignored_is_nan_like_torch():
    logits = torch.randn(2, 3, 5)
    labels = torch.full((2, 3), -100)
    assert torch.isnan(F.cross_entropy(logits.reshape(-1, 5), labels.reshape(-1)))
    assert torch.isnan(masked_cross_entropy(logits, labels))


def test_masked_cross_entropy_bad_input():
    with pytest.raises(ValueError, match="line up"):
        masked_cross_entropy(torch.zeros(2, 3, 5), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="outside"):
        masked_cross_entropy(torch.zeros(2, 5), torch.tensor([1, 5]))


# --- few-shot prompts ----------------------------------------------------------------------------


def test_few_shot_prompt_zero_shot():
    assert few_shot_prompt([], "I loved it") == "Input: I loved it\nOutput:"
    assert (
        few_shot_prompt([], "I loved it", instruction="Classify the sentiment.")
        == "Classify the sentiment.\n\nInput: I loved it\nOutput:"
    )


def test_few_shot_prompt_two_examples():
    prompt = few_shot_prompt(
        [("cheese", "fromage"), ("sea otter", "loutre de mer")],
        "peppermint",
        instruction="Translate English to French.",
        template="{input} => {output}",
    )
    assert prompt == (
        "Translate English to French.\n\ncheese => fromage\n\nsea otter => loutre de mer"
        "\n\npeppermint =>"
    )


def test_few_shot_prompt_cuts_query_at_output_field():
    prompt = few_shot_prompt([("2+2", "4")], "3+5", template="Q: {input}\nA: {output}\n###")
    assert prompt == "Q: 2+2\nA: 4\n###\n\nQ: 3+5\nA:"


def test_few_shot_prompt_bad_template():
    with pytest.raises(ValueError, match="output"):
        few_shot_prompt([], "x", template="Input: {input}")
    with pytest.raises(TypeError, match="pairs"):
        few_shot_prompt(("a", "b"), "x")


# --- the tiny masked LM --------------------------------------------------------------------------


def test_tiny_mlm_shapes_padding_and_seeded_init():
    g = torch.Generator().manual_seed(0)
    model = TinyMaskedLM(50, d_model=16, nhead=2, num_layers=1, dim_feedforward=32, generator=g)
    twin = TinyMaskedLM(
        50,
        d_model=16,
        nhead=2,
        num_layers=1,
        dim_feedforward=32,
        generator=torch.Generator().manual_seed(0),
    )
    ids = torch.tensor([[2, 7, 8, 3, 0, 0], [2, 9, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    logits = model(ids, mask)
    assert logits.shape == (2, 6, 50)
    torch.testing.assert_close(logits, twin(ids, mask))
    # real positions must not see the padding: changing a pad id leaves them unchanged
    other = ids.clone()
    other[0, 5] = 11
    torch.testing.assert_close(model(other, mask)[0, :4], logits[0, :4])
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 40, dtype=torch.long))


def test_encode_sentences_marks_specials():
    from course_lib.tokenization import build_vocab

    vocab = build_vocab(["the", "cat", "sat"], 10)
    batch = encode_sentences(["The cat sat.", "The cat"], vocab, max_len=8)
    ids, special = batch["input_ids"], batch["special_tokens_mask"]
    assert ids[0, 0] == vocab["[CLS]"] and ids[1, 3] == vocab["[SEP]"]
    assert ids[0, 4] == vocab["[UNK]"] and not special[0, 4]  # "." is unknown, not special
    assert special.tolist()[1] == [True, False, False, True, True, True]


def test_tiny_mlm_loss_falls_on_shipped_corpus():
    from course_lib.data import load_corpus

    # 120 of the book's 300 steps keep this test short; no wall-clock assert (shared CPUs)
    losses = train_tiny_mlm(
        load_corpus("en"), steps=120, generator=torch.Generator().manual_seed(0)
    )
    assert len(losses) == 120 and all(math.isfinite(x) for x in losses)
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert first > 0.8 * math.log(200), "an untrained model should be near-uniform"
    assert last < first - 1.0, f"loss fell only from {first:.2f} to {last:.2f}"


def test_train_tiny_mlm_is_reproducible():
    sentences = ["the cat sat on the mat .", "the dog sat on the log ."] * 4
    a = train_tiny_mlm(sentences, steps=3, batch_size=4, generator=torch.Generator().manual_seed(5))
    b = train_tiny_mlm(sentences, steps=3, batch_size=4, generator=torch.Generator().manual_seed(5))
    assert a == b


# --- bias ----------------------------------------------------------------------------------------


def test_gender_occupation_probe_hand_counts():
    sentences = ["He is a nurse.", "She is a nurse.", "She works as a NURSE .", "The pilot slept."]
    probe = gender_occupation_probe(sentences, ["nurse", "pilot"])
    assert probe["nurse"]["male"] == 1 and probe["nurse"]["female"] == 2
    assert probe["nurse"]["log_ratio"] == pytest.approx(math.log(2 / 3))
    assert probe["pilot"] == {"male": 0, "female": 0, "log_ratio": 0.0}


def test_occupation_corpus_skew_survives_into_the_model():
    g = torch.Generator().manual_seed(0)
    p_he = {"engineer": 0.95, "nurse": 0.05}
    corpus = make_occupation_corpus(300, generator=g, p_he=p_he)
    probe = gender_occupation_probe(corpus, list(p_he))
    assert probe["engineer"]["log_ratio"] > 1.5 and probe["nurse"]["log_ratio"] < -1.5
    assert "he is an engineer ." in corpus and "she is a nurse ." in corpus

    from course_lib.pretraining import _words
    from course_lib.tokenization import build_vocab

    vocab = build_vocab([w for s in corpus for w in _words(s)], 100)
    model = TinyMaskedLM(len(vocab), d_model=32, nhead=2, num_layers=1, generator=g)
    train_tiny_mlm(corpus, steps=120, generator=g, model=model, vocab=vocab, mlm_probability=0.3)
    p_engineer = dict(fill_mask(model, vocab, "[MASK] is an engineer .", k=10))
    p_nurse = dict(fill_mask(model, vocab, "[MASK] is a nurse .", k=10))
    assert p_engineer["he"] > p_engineer["she"]
    assert p_nurse["she"] > p_nurse["he"]
