"""Wrong and alternative implementations for 03_embeddings (see tests/notebook_harness.py)."""

from notebook_harness import alternative, mutant

VARIANTS = [
    # one_hot ---------------------------------------------------------------------------------
    mutant(
        "one_hot",
        "long instead of float32",
        """
        def one_hot(ids, num_classes):
            return (ids.unsqueeze(-1) == torch.arange(num_classes)).long()
    """,
        expect=r"dtype",
    ),
    mutant(
        "one_hot",
        "classes on the first axis",
        """
        def one_hot(ids, num_classes):
            return (torch.arange(num_classes).view(-1, *[1] * ids.ndim) == ids).float()
    """,
        expect=r"shape",
    ),
    mutant(
        "one_hot",
        "off by one (ids counted from 1)",
        """
        def one_hot(ids, num_classes):
            return (ids.unsqueeze(-1) == torch.arange(1, num_classes + 1)).float()
    """,
    ),
    mutant(
        "one_hot",
        "calls F.one_hot",
        """
        import torch.nn.functional as F

        def one_hot(ids, num_classes):
            return F.one_hot(ids, num_classes).float()
    """,
        expect=r"does not allow",
    ),
    alternative(
        "one_hot",
        "scatter into zeros",
        """
        def one_hot(ids, num_classes):
            out = torch.zeros(*ids.shape, num_classes)
            out.scatter_(-1, ids.unsqueeze(-1), 1.0)
            return out
    """,
    ),
    # embedding_lookup ------------------------------------------------------------------------
    mutant(
        "embedding_lookup",
        "indexes columns",
        """
        def embedding_lookup(ids, weight):
            return weight[:, ids].movedim(0, -1)
    """,
    ),
    mutant(
        "embedding_lookup",
        "flattens the batch",
        """
        def embedding_lookup(ids, weight):
            return weight[ids.flatten()]
    """,
        expect=r"shape",
    ),
    mutant(
        "embedding_lookup",
        "calls F.embedding",
        """
        import torch.nn.functional as F

        def embedding_lookup(ids, weight):
            return F.embedding(ids, weight)
    """,
        expect=r"does not allow",
    ),
    alternative(
        "embedding_lookup",
        "one-hot times the matrix",
        """
        def embedding_lookup(ids, weight):
            hot = (ids.unsqueeze(-1) == torch.arange(weight.shape[0])).to(weight.dtype)
            return hot @ weight
    """,
    ),
    # cosine_similarity -----------------------------------------------------------------------
    mutant(
        "cosine_similarity",
        "dot product only",
        """
        def cosine_similarity(a, b, dim=-1, eps=1e-8):
            return (a * b).sum(dim)
    """,
        expect=r"plain dot product",
    ),
    mutant(
        "cosine_similarity",
        "NaN for zero vectors",
        """
        def cosine_similarity(a, b, dim=-1, eps=1e-8):
            return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim))
    """,
        expect=r"NaN",
    ),
    mutant(
        "cosine_similarity",
        "ignores dim",
        """
        def cosine_similarity(a, b, dim=-1, eps=1e-8):
            an = a.norm(dim=-1, keepdim=True).clamp_min(eps)
            bn = b.norm(dim=-1, keepdim=True).clamp_min(eps)
            return ((a / an) * (b / bn)).sum(-1)
    """,
    ),
    mutant(
        "cosine_similarity",
        "calls F.cosine_similarity",
        """
        import torch.nn.functional as F

        def cosine_similarity(a, b, dim=-1, eps=1e-8):
            return F.cosine_similarity(a, b, dim=dim, eps=eps)
    """,
        expect=r"does not allow",
    ),
    alternative(
        "cosine_similarity",
        "normalise first with a loop-free formula",
        """
        def cosine_similarity(a, b, dim=-1, eps=1e-8):
            a_unit = a / torch.linalg.vector_norm(a, dim=dim, keepdim=True).clamp(min=eps)
            b_unit = b / torch.linalg.vector_norm(b, dim=dim, keepdim=True).clamp(min=eps)
            return torch.sum(a_unit * b_unit, dim=dim)
    """,
    ),
    # most_similar ----------------------------------------------------------------------------
    mutant(
        "most_similar",
        "ranks by dot product",
        """
        def most_similar(query, weight, k, exclude=None):
            scores = weight @ query
            if exclude:
                scores[list(exclude)] = float("-inf")
            top = scores.topk(k)
            return top.indices, top.values
    """,
        expect=r"dot product",
    ),
    mutant(
        "most_similar",
        "ignores exclude",
        """
        def most_similar(query, weight, k, exclude=None):
            top = cosine_similarity(query.unsqueeze(0), weight).topk(k)
            return top.indices, top.values
    """,
        expect=r"exclude",
    ),
    mutant(
        "most_similar",
        "worst first",
        """
        def most_similar(query, weight, k, exclude=None):
            scores = cosine_similarity(query.unsqueeze(0), weight)
            if exclude:
                scores[list(exclude)] = float("inf")
            top = scores.topk(k, largest=False)
            return top.indices, top.values
    """,
    ),
    alternative(
        "most_similar",
        "argsort",
        """
        def most_similar(query, weight, k, exclude=None):
            scores = torch.stack([cosine_similarity(query, row) for row in weight])
            order = [int(i) for i in torch.argsort(scores, descending=True) if int(i) not in (exclude or [])][:k]
            idx = torch.tensor(order, dtype=torch.long)
            return idx, scores[idx]
    """,
    ),
    # analogy ---------------------------------------------------------------------------------
    mutant(
        "analogy",
        "a - b + c",
        """
        def analogy(a, b, c, weight, k=1):
            return most_similar(weight[a] - weight[b] + weight[c], weight, k, exclude=[a, b, c])[0]
    """,
        expect=r"wrong way round",
    ),
    mutant(
        "analogy",
        "no exclusion",
        """
        def analogy(a, b, c, weight, k=1):
            return most_similar(weight[b] - weight[a] + weight[c], weight, k)[0]
    """,
        expect=r"not excluded",
    ),
    mutant(
        "analogy",
        "returns the scores",
        """
        def analogy(a, b, c, weight, k=1):
            return most_similar(weight[b] - weight[a] + weight[c], weight, k, exclude=[a, b, c])[1]
    """,
        expect=r"dtype",
    ),
    alternative(
        "analogy",
        "cosine by hand",
        """
        def analogy(a, b, c, weight, k=1):
            target = weight[b] + weight[c] - weight[a]
            sims = (weight @ target) / (weight.norm(dim=1).clamp_min(1e-8) * target.norm().clamp_min(1e-8))
            sims[[a, b, c]] = float("-inf")
            return sims.topk(k).indices
    """,
    ),
]
