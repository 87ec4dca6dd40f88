"""Random-init judges written to disk with ``save_pretrained``, as a downloaded judge is laid out.

Each folder holds the model weights and config, an image processor, and a tokenizer made in code
with the ``tokenizers`` library (with the special tokens the architecture's processor needs and
the chat template the real model ships), so it loads through ``AutoProcessor`` /
``AutoModelForImageTextToText`` with no network. Used by tests/judge and bench/bench_judge.py.

The chat templates below imitate the ones SmolVLM and Qwen2.5-VL ship; they are model data,
written into the model folder, exactly as a downloaded model brings its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vlmrm_core._torchvision_compat import install as _install_torchvision_compat

_install_torchvision_compat()  # before transformers imports torchvision

# isort: split
import torch  # noqa: E402

# Words of the questions and answers used in tests: whole-word tokens in both tokenizers.
WORDS = [
    "yes",
    "no",
    "is",
    "the",
    "pole",
    "balanced",
    "upright",
    "on",
    "cart",
    "answer",
    "or",
    "a",
    "robot",
    "kneeling",
    "are",
    "these",
    "frames",
    "same",
    "Is",
    "Answer",
    "user",
    "assistant",
    "User:",
    "Assistant:",
    ":",
    "?",
    ".",
    ",",
    "true",
    "false",
    "maybe",
]

SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}"
    "{{ content['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class JudgeSize:
    """Widths and depths of a random-init judge."""

    image_size: int
    patch_size: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    text_intermediate: int
    scale_factor: int = 2
    vision_intermediate: int = 0
    """The vision MLP's width (0: twice ``vision_hidden``)."""


TINY = JudgeSize(32, 8, 32, 1, 2, 32, 2, 4, 2, 64)
"""A few hundred kB: seconds to build and to run."""

SMOLVLM_256M = JudgeSize(
    512, 16, 768, 12, 12, 576, 30, 9, 3, 1536, scale_factor=4, vision_intermediate=3072
)
"""SmolVLM-256M's shapes: SigLIP-B/16 at 512² (64 image tokens per tile), a 30-layer 576-wide LM."""


def _special_tokens_idefics3() -> list[str]:
    rows = [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
    return [
        "<|im_start|>",
        "<end_of_utterance>",
        "<fake_token_around_image>",
        "<image>",
        "<global-img>",
        "<unk>",
        *rows,
    ]


def _special_tokens_qwen() -> list[str]:
    return [
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
        "<|endoftext|>",
    ]


def build_tokenizer(kind: str, special: list[str], template: str):
    """A fast tokenizer made in code: ``bpe`` (byte-level, GPT-2 style: no unknown words, a word
    after a space is its own token ``Ġword``) or ``wordlevel`` (whitespace words, unknown words
    become ``<unk>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        corpus = [" ".join(WORDS)] * 4 + [f" {w}" for w in WORDS] * 2 + list(WORDS) * 2
        trainer = trainers.BpeTrainer(
            vocab_size=1000,
            special_tokens=special,
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        tok.train_from_iterator(corpus, trainer)
        unk = None
    else:
        vocab = {t: i for i, t in enumerate(dict.fromkeys([*special, *WORDS, "\n"]))}
        tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.decoder = decoders.WordPiece()
        unk = "<unk>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token=unk, pad_token=special[-1])
    fast.add_special_tokens({"additional_special_tokens": special})
    fast.chat_template = template
    return fast


def write_idefics3(folder: Path, size: JudgeSize = TINY, tokenizer: str = "wordlevel") -> Path:
    """A random-init Idefics3 (SmolVLM) judge in ``folder``, one tile per image."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    tok = build_tokenizer(tokenizer, _special_tokens_idefics3(), SMOLVLM_TEMPLATE)
    image_seq_len = (size.image_size // size.patch_size) ** 2 // size.scale_factor**2
    config = Idefics3Config(
        vision_config=dict(
            hidden_size=size.vision_hidden,
            intermediate_size=size.vision_intermediate or 2 * size.vision_hidden,
            num_hidden_layers=size.vision_layers,
            num_attention_heads=size.vision_heads,
            image_size=size.image_size,
            patch_size=size.patch_size,
        ),
        text_config=dict(
            model_type="llama",
            vocab_size=len(tok),
            hidden_size=size.text_hidden,
            intermediate_size=size.text_intermediate,
            num_hidden_layers=size.text_layers,
            num_attention_heads=size.text_heads,
            num_key_value_heads=size.text_kv_heads,
            tie_word_embeddings=True,
            pad_token_id=tok.pad_token_id,
        ),
        scale_factor=size.scale_factor,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vlmrm_random_init=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Idefics3ForConditionalGeneration(config).eval()
    image_processor = Idefics3ImageProcessor(
        do_image_splitting=False,
        size={"longest_edge": size.image_size},
        max_image_size={"longest_edge": size.image_size},
    )
    processor = Idefics3Processor(
        image_processor, tok, image_seq_len=image_seq_len, chat_template=SMOLVLM_TEMPLATE
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_qwen2_5_vl(folder: Path, size: JudgeSize = TINY, tokenizer: str = "bpe") -> Path:
    """A random-init Qwen2.5-VL judge in ``folder`` (images resized to about ``image_size``²)."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    tok = build_tokenizer(tokenizer, _special_tokens_qwen(), QWEN_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in _special_tokens_qwen()}
    head_dim = size.text_hidden // size.text_heads
    config = Qwen2_5_VLConfig(
        vision_config=dict(
            depth=size.vision_layers,
            hidden_size=size.vision_hidden,
            intermediate_size=2 * size.vision_hidden,
            num_heads=size.vision_heads,
            patch_size=size.patch_size,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=size.text_hidden,
            window_size=4 * size.patch_size,
            fullatt_block_indexes=[size.vision_layers - 1],
        ),
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=size.text_hidden,
            intermediate_size=size.text_intermediate,
            num_hidden_layers=size.text_layers,
            num_attention_heads=size.text_heads,
            num_key_value_heads=size.text_kv_heads,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [head_dim // 4, head_dim // 8, head_dim // 8],
            },
            tie_word_embeddings=True,
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        vlmrm_random_init=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    pixels = size.image_size**2
    image_processor = Qwen2VLImageProcessor(
        patch_size=size.patch_size,
        merge_size=2,
        temporal_patch_size=2,
        min_pixels=pixels,
        max_pixels=pixels,
    )
    video_processor = Qwen2VLVideoProcessor(
        patch_size=size.patch_size, merge_size=2, temporal_patch_size=2
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        video_processor=video_processor,
        chat_template=QWEN_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
