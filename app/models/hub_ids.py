"""The Hugging Face Hub's licence identifiers and pipeline tags, for validating card metadata."""

from __future__ import annotations

import re

# https://huggingface.co/docs/hub/repositories-licenses (the `license:` values the Hub
# accepts; mostly lower-cased SPDX ids plus the Hub's own). huggingface_hub ships no copy.
HUB_LICENCES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause
bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0
cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0
cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research
intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl openmdw-1.0
openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
llama3.3 llama4 gemma unknown other
""".split())  # noqa: SIM905 (a word list reads better as text)

# https://huggingface.co/tasks (the Hub's `pipeline_tag` values).
PIPELINE_TAGS = frozenset("""
text-generation text2text-generation text-classification token-classification
question-answering table-question-answering zero-shot-classification translation
summarization feature-extraction fill-mask sentence-similarity text-ranking
conversational image-text-to-text visual-question-answering
document-question-answering image-classification image-segmentation object-detection
image-to-text text-to-image image-to-image image-feature-extraction depth-estimation
zero-shot-image-classification zero-shot-object-detection mask-generation
unconditional-image-generation video-classification text-to-video image-to-video
video-text-to-text automatic-speech-recognition audio-classification text-to-speech
text-to-audio audio-to-audio voice-activity-detection tabular-classification
tabular-regression time-series-forecasting reinforcement-learning robotics
graph-ml any-to-any other
""".split())  # noqa: SIM905 (a word list reads better as text)

# A Hub repository id ("gpt2", "openai-community/gpt2"): what base_model and datasets name.
REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
LIBRARY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
