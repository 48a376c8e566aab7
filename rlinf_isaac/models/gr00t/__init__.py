"""GR00T N1.5-architecture policy: config, backbone, flow-matching action head, checkpoint I/O, processor, RL policy."""

from rlinf_isaac.models.gr00t.action_head import ActionContext, FlowMatchingActionHead
from rlinf_isaac.models.gr00t.backbone import EagleBackbone
from rlinf_isaac.models.gr00t.checkpoint import Pretrained, load_pretrained, save_pretrained
from rlinf_isaac.models.gr00t.config import (
    ActionHeadConfig,
    BackboneConfig,
    GR00TConfig,
    list_configs,
    load_config,
)
from rlinf_isaac.models.gr00t.modeling import GR00TN15, build_model
from rlinf_isaac.models.gr00t.policy import GR00TPolicy, GR00TPolicyConfig
from rlinf_isaac.models.gr00t.processor import GR00TProcessor, compute_statistics, load_metadata
from rlinf_isaac.models.gr00t.tokenizer import build_tiny_tokenizer, load_tokenizer
from rlinf_isaac.models.gr00t.value_head import ValueHead, ValueHeadConfig

__all__ = [
    "ActionContext",
    "ActionHeadConfig",
    "BackboneConfig",
    "EagleBackbone",
    "FlowMatchingActionHead",
    "GR00TConfig",
    "GR00TN15",
    "GR00TPolicy",
    "GR00TPolicyConfig",
    "GR00TProcessor",
    "ValueHead",
    "ValueHeadConfig",
    "build_tiny_tokenizer",
    "compute_statistics",
    "load_metadata",
    "load_tokenizer",
    "Pretrained",
    "build_model",
    "list_configs",
    "load_config",
    "load_pretrained",
    "save_pretrained",
]
