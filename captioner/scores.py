"""BLEU-1..4, METEOR and CIDEr of captions against their references, as the COCO caption server
computes them (pycocoevalcap): the scores of every world, and of any COCO-format set."""
from __future__ import annotations

import shutil
import warnings


def caption_scores(references: dict, hypotheses: dict, meteor: bool = True) -> dict:
    """BLEU-1..4 and CIDEr from pycocoevalcap (METEOR too where Java runs), like the COCO server.

    references: {image id: [captions]}; hypotheses: {image id: caption}. METEOR's Java start-up
    (loading its paraphrase table) takes several seconds: `meteor=False` skips it.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    refs, hyps = _tokenised(references, hypotheses)
    bleu, _ = Bleu(4).compute_score(refs, hyps, verbose=0)
    cider, _ = Cider().compute_score(refs, hyps)
    scores = {f"bleu{n + 1}": round(float(b), 4) for n, b in enumerate(bleu)}
    scores["cider"] = round(float(cider), 4)
    if meteor and shutil.which("java"):
        try:
            from pycocoevalcap.meteor.meteor import Meteor
            scores["meteor"] = round(float(Meteor().compute_score(refs, hyps)[0]), 4)
        except Exception as error:   # METEOR is optional: a broken Java set-up must not lose the rest
            warnings.warn(f"METEOR skipped: {error}")
    return scores


def _tokenised(references: dict, hypotheses: dict):
    """The COCO server's PTB tokenizer (Java) where available; else lower case, punctuation dropped."""
    if shutil.which("java"):
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
        tokenizer = PTBTokenizer()
        refs = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in references.items()})
        hyps = tokenizer.tokenize({k: [{"caption": hypotheses[k]}] for k in references})
        return refs, hyps
    from .vocab import tokenize
    return ({k: [" ".join(tokenize(c)) for c in v] for k, v in references.items()},
            {k: [" ".join(tokenize(hypotheses[k]))] for k in references})


