"""Wrong and alternative implementations for 02_tokenization (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

VARIANTS = [
    # normalize -------------------------------------------------------------------------------
    mutant(
        "normalize",
        "keeps accents (NFC)",
        """
        def normalize(text):
            return " ".join(unicodedata.normalize("NFC", text).lower().split())
    """,
        expect=r"accents are kept",
    ),
    mutant(
        "normalize",
        "no lowercase",
        """
        def normalize(text):
            d = unicodedata.normalize("NFD", text)
            return " ".join("".join(c for c in d if unicodedata.category(c) != "Mn").split())
    """,
        expect=r"not lowercased",
    ),
    mutant(
        "normalize",
        "only strips, does not collapse whitespace",
        """
        def normalize(text):
            d = unicodedata.normalize("NFD", text)
            return "".join(c for c in d if unicodedata.category(c) != "Mn").lower().strip()
    """,
        expect=r"whitespace",
    ),
    alternative(
        "normalize",
        "regex whitespace and combining()",
        """
        import re

        def normalize(text):
            d = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
            return re.sub(r"\\s+", " ", d.lower()).strip()
    """,
    ),
    # pre_tokenize ----------------------------------------------------------------------------
    mutant(
        "pre_tokenize",
        "whitespace split only",
        """
        def pre_tokenize(text):
            return text.split()
    """,
        expect=r"not split off",
    ),
    mutant(
        "pre_tokenize",
        "keeps runs of punctuation together",
        """
        import re

        def pre_tokenize(text):
            return re.findall(r"\\w+|[^\\w\\s]+", text)
    """,
        expect=r"run of punctuation",
    ),
    mutant(
        "pre_tokenize",
        "ASCII punctuation only",
        """
        import string

        def pre_tokenize(text):
            out = []
            for word in text.split():
                cur = ""
                for ch in word:
                    if ch in string.punctuation:
                        if cur:
                            out.append(cur)
                        out.append(ch)
                        cur = ""
                    else:
                        cur += ch
                if cur:
                    out.append(cur)
            return out
    """,
    ),
    alternative(
        "pre_tokenize",
        "regex with a character class",
        """
        import re

        def pre_tokenize(text):
            def punct(ch):
                return (33 <= ord(ch) <= 47 or 58 <= ord(ch) <= 64 or 91 <= ord(ch) <= 96
                        or 123 <= ord(ch) <= 126 or unicodedata.category(ch).startswith("P"))
            tokens = []
            for word in re.split(r"\\s+", text.strip()):
                piece = ""
                for ch in word:
                    if punct(ch):
                        tokens += [piece] if piece else []
                        tokens.append(ch)
                        piece = ""
                    else:
                        piece += ch
                tokens += [piece] if piece else []
            return tokens
    """,
    ),
    # build_vocab -----------------------------------------------------------------------------
    mutant(
        "build_vocab",
        "ties in first-seen order",
        """
        def build_vocab(tokens, max_size, specials=SPECIALS):
            counts = Counter(t for t in tokens if t not in specials)
            kept = [t for t, _ in counts.most_common(max_size - len(specials))]
            return {t: i for i, t in enumerate([*specials, *kept])}
    """,
        expect=r"alphabetical",
    ),
    mutant(
        "build_vocab",
        "max_size excludes the specials",
        """
        def build_vocab(tokens, max_size, specials=SPECIALS):
            counts = Counter(t for t in tokens if t not in specials)
            kept = sorted(counts, key=lambda t: (-counts[t], t))[:max_size]
            return {t: i for i, t in enumerate([*specials, *kept])}
    """,
        expect=r"count the specials",
    ),
    mutant(
        "build_vocab",
        "specials counted as tokens too",
        """
        def build_vocab(tokens, max_size, specials=SPECIALS):
            counts = Counter(tokens)
            kept = sorted(counts, key=lambda t: (-counts[t], t))[: max_size - len(specials)]
            vocab = {t: i for i, t in enumerate(specials)}
            for t in kept:
                vocab.setdefault(t, len(vocab))
            return vocab
    """,
    ),
    alternative(
        "build_vocab",
        "two stable sorts",
        """
        def build_vocab(tokens, max_size, specials=SPECIALS):
            counts = {}
            for t in tokens:
                if t not in specials:
                    counts[t] = counts.get(t, 0) + 1
            words = sorted(counts)
            words = sorted(words, key=lambda t: counts[t], reverse=True)
            vocab = {s: i for i, s in enumerate(specials)}
            for t in words[: max(0, max_size - len(specials))]:
                vocab[t] = len(vocab)
            return vocab
    """,
    ),
    # encode ----------------------------------------------------------------------------------
    mutant(
        "encode",
        "unknown tokens raise KeyError",
        """
        def encode(tokens, vocab, unk_token="[UNK]"):
            return [vocab[t] for t in tokens]
    """,
        expect=r"KeyError",
    ),
    mutant(
        "encode",
        "unknown tokens dropped",
        """
        def encode(tokens, vocab, unk_token="[UNK]"):
            return [vocab[t] for t in tokens if t in vocab]
    """,
    ),
    mutant(
        "encode",
        "unk_token argument ignored",
        """
        def encode(tokens, vocab, unk_token="[UNK]"):
            return [vocab.get(t, vocab.get("[UNK]", 1)) for t in tokens]
    """,
    ),
    alternative(
        "encode",
        "explicit loop",
        """
        def encode(tokens, vocab, unk_token="[UNK]"):
            out = []
            for t in tokens:
                out.append(vocab[t] if t in vocab else vocab[unk_token])
            return out
    """,
    ),
    # decode ----------------------------------------------------------------------------------
    mutant(
        "decode",
        "assumes ids follow insertion order",
        """
        def decode(ids, vocab):
            tokens = list(vocab)
            return [tokens[i] for i in ids]
    """,
    ),
    mutant(
        "decode",
        "returns a joined string",
        """
        def decode(ids, vocab):
            inv = {i: t for t, i in vocab.items()}
            return " ".join(inv[i] for i in ids)
    """,
        expect=r"should be a list",
    ),
    mutant(
        "decode",
        "drops the specials",
        """
        def decode(ids, vocab):
            inv = {i: t for t, i in vocab.items()}
            return [inv[i] for i in ids if not inv[i].startswith("[")]
    """,
    ),
    alternative(
        "decode",
        "search the dict each time",
        """
        def decode(ids, vocab):
            return [next(t for t, j in vocab.items() if j == i) for i in ids]
    """,
    ),
    # get_stats -------------------------------------------------------------------------------
    mutant(
        "get_stats",
        "misses the last pair",
        """
        def get_stats(ids):
            counts = {}
            for i in range(len(ids) - 2):
                pair = (ids[i], ids[i + 1])
                counts[pair] = counts.get(pair, 0) + 1
            return counts
    """,
        expect=r"last pair",
    ),
    mutant(
        "get_stats",
        "counts each pair once",
        """
        def get_stats(ids):
            return {pair: 1 for pair in zip(ids, ids[1:])}
    """,
    ),
    mutant(
        "get_stats",
        "non-overlapping pairs only",
        """
        def get_stats(ids):
            counts = {}
            for i in range(0, len(ids) - 1, 2):
                pair = (ids[i], ids[i + 1])
                counts[pair] = counts.get(pair, 0) + 1
            return counts
    """,
    ),
    alternative(
        "get_stats",
        "Counter over zip",
        """
        def get_stats(ids):
            return dict(Counter(zip(ids, ids[1:])))
    """,
    ),
    # merge -----------------------------------------------------------------------------------
    mutant(
        "merge",
        "overlaps merged twice",
        """
        def merge(ids, pair, idx):
            out = []
            for i, t in enumerate(ids):
                if i + 1 < len(ids) and (t, ids[i + 1]) == pair:
                    out.append(idx)
                elif i > 0 and (ids[i - 1], t) == pair:
                    continue
                else:
                    out.append(t)
            return out
    """,
    ),
    mutant(
        "merge",
        "only the first occurrence",
        """
        def merge(ids, pair, idx):
            for i in range(len(ids) - 1):
                if (ids[i], ids[i + 1]) == pair:
                    return ids[:i] + [idx] + ids[i + 2:]
            return list(ids)
    """,
    ),
    mutant(
        "merge",
        "merges in place",
        """
        def merge(ids, pair, idx):
            i = 0
            while i < len(ids) - 1:
                if (ids[i], ids[i + 1]) == pair:
                    ids[i : i + 2] = [idx]
                i += 1
            return ids
    """,
        expect=r"in place",
    ),
    alternative(
        "merge",
        "recursive",
        """
        def merge(ids, pair, idx):
            if len(ids) < 2:
                return list(ids)
            if (ids[0], ids[1]) == pair:
                return [idx] + merge(ids[2:], pair, idx)
            return [ids[0]] + merge(ids[1:], pair, idx)
    """,
    ),
    # bpe_train -------------------------------------------------------------------------------
    mutant(
        "bpe_train",
        "ties to the smallest pair",
        """
        def bpe_train(text, vocab_size):
            ids, merges = list(text.encode("utf-8")), {}
            for idx in range(256, vocab_size):
                stats = get_stats(ids)
                if not stats:
                    break
                pair = max(sorted(stats), key=stats.get)
                ids = merge(ids, pair, idx)
                merges[pair] = idx
            return merges
    """,
        expect=r"ties go to the smallest",
    ),
    mutant(
        "bpe_train",
        "one merge too few",
        """
        def bpe_train(text, vocab_size):
            ids, merges = list(text.encode("utf-8")), {}
            for idx in range(256, vocab_size - 1):
                stats = get_stats(ids)
                if not stats:
                    break
                pair = max(stats, key=stats.get)
                ids = merge(ids, pair, idx)
                merges[pair] = idx
            return merges
    """,
        expect=r"one merge too few",
    ),
    mutant(
        "bpe_train",
        "works on characters, not bytes",
        """
        def bpe_train(text, vocab_size):
            ids, merges = [ord(c) for c in text], {}
            for idx in range(256, vocab_size):
                stats = get_stats(ids)
                if not stats:
                    break
                pair = max(stats, key=stats.get)
                ids = merge(ids, pair, idx)
                merges[pair] = idx
            return merges
    """,
    ),
    alternative(
        "bpe_train",
        "explicit first-occurrence tie-break",
        """
        def bpe_train(text, vocab_size):
            ids, merges = list(text.encode("utf-8")), {}
            for idx in range(256, vocab_size):
                stats = get_stats(ids)
                if not stats:
                    break
                best = max(stats.values())
                pair = next(p for p in zip(ids, ids[1:]) if stats[p] == best)
                ids = merge(ids, pair, idx)
                merges[pair] = idx
            return merges
    """,
    ),
    # bpe_encode ------------------------------------------------------------------------------
    mutant(
        "bpe_encode",
        "merges the most frequent pair instead of the earliest learned",
        """
        def bpe_encode(text, merges):
            ids = list(text.encode("utf-8"))
            while True:
                stats = {p: c for p, c in get_stats(ids).items() if p in merges}
                if not stats:
                    return ids
                pair = max(stats, key=stats.get)
                ids = merge(ids, pair, merges[pair])
    """,
    ),
    mutant(
        "bpe_encode",
        "one pass over the text",
        """
        def bpe_encode(text, merges):
            ids = list(text.encode("utf-8"))
            for pair in list(get_stats(ids)):
                if pair in merges:
                    ids = merge(ids, pair, merges[pair])
            return ids
    """,
    ),
    mutant(
        "bpe_encode",
        "encodes characters, not bytes",
        """
        def bpe_encode(text, merges):
            ids = [ord(c) for c in text]
            for pair, idx in sorted(merges.items(), key=lambda kv: kv[1]):
                ids = merge(ids, pair, idx)
            return ids
    """,
    ),
    alternative(
        "bpe_encode",
        "replay the merges in order",
        """
        def bpe_encode(text, merges):
            ids = list(text.encode("utf-8"))
            for pair, idx in sorted(merges.items(), key=lambda kv: kv[1]):
                ids = merge(ids, pair, idx)
            return ids
    """,
    ),
    # bpe_decode ------------------------------------------------------------------------------
    mutant(
        "bpe_decode",
        "decodes each token on its own",
        """
        def bpe_decode(ids, merges):
            vocab = {i: bytes([i]) for i in range(256)}
            for (a, b), idx in sorted(merges.items(), key=lambda kv: kv[1]):
                vocab[idx] = vocab[a] + vocab[b]
            return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)
    """,
    ),
    mutant(
        "bpe_decode",
        "strict UTF-8 decoding",
        """
        def bpe_decode(ids, merges):
            vocab = {i: bytes([i]) for i in range(256)}
            for (a, b), idx in sorted(merges.items(), key=lambda kv: kv[1]):
                vocab[idx] = vocab[a] + vocab[b]
            return b"".join(vocab[i] for i in ids).decode("utf-8")
    """,
        expect=r"UnicodeDecodeError",
    ),
    mutant(
        "bpe_decode",
        "merged ids expanded to one byte",
        """
        def bpe_decode(ids, merges):
            inverse = {idx: pair for pair, idx in merges.items()}
            out = bytes(i if i < 256 else inverse[i][0] for i in ids)
            return out.decode("utf-8", errors="replace")
    """,
    ),
    alternative(
        "bpe_decode",
        "recursive expansion",
        """
        def bpe_decode(ids, merges):
            inverse = {idx: pair for pair, idx in merges.items()}

            def expand(i):
                return [i] if i < 256 else expand(inverse[i][0]) + expand(inverse[i][1])

            return bytes(b for i in ids for b in expand(i)).decode("utf-8", errors="replace")
    """,
    ),
    # pad_batch -------------------------------------------------------------------------------
    mutant(
        "pad_batch",
        "mask inverted",
        """
        def pad_batch(batch, pad_id=0):
            T = max(len(s) for s in batch)
            ids = torch.tensor([s + [pad_id] * (T - len(s)) for s in batch], dtype=torch.long)
            mask = torch.tensor([[0] * len(s) + [1] * (T - len(s)) for s in batch], dtype=torch.long)
            return {"input_ids": ids, "attention_mask": mask}
    """,
        expect=r"inverted",
    ),
    mutant(
        "pad_batch",
        "left padding",
        """
        def pad_batch(batch, pad_id=0):
            T = max(len(s) for s in batch)
            ids = torch.tensor([[pad_id] * (T - len(s)) + s for s in batch], dtype=torch.long)
            mask = torch.tensor([[0] * (T - len(s)) + [1] * len(s) for s in batch], dtype=torch.long)
            return {"input_ids": ids, "attention_mask": mask}
    """,
        expect=r"left",
    ),
    mutant(
        "pad_batch",
        "bool mask and ignores pad_id",
        """
        def pad_batch(batch, pad_id=0):
            T = max(len(s) for s in batch)
            ids = torch.tensor([s + [0] * (T - len(s)) for s in batch], dtype=torch.long)
            mask = torch.tensor([[True] * len(s) + [False] * (T - len(s)) for s in batch])
            return {"input_ids": ids, "attention_mask": mask}
    """,
        expect=r"dtype",
    ),
    alternative(
        "pad_batch",
        "pad_sequence",
        """
        def pad_batch(batch, pad_id=0):
            from torch.nn.utils.rnn import pad_sequence
            seqs = [torch.tensor(s, dtype=torch.long) for s in batch]
            ids = pad_sequence(seqs, batch_first=True, padding_value=pad_id)
            mask = pad_sequence([torch.ones_like(s) for s in seqs], batch_first=True)
            return {"input_ids": ids, "attention_mask": mask}
    """,
    ),
]
