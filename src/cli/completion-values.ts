import type { Option } from 'commander';

/**
 * The fixed values of an option whose parser is our own (so that its error stays our one
 * sentence) rather than commander's `.choices()`: shell completion reads them from here,
 * from the option object itself, so they are defined where the option is.
 */
const VALUES = new WeakMap<Option, readonly string[]>();

export function withValues(option: Option, values: readonly string[]): Option {
  VALUES.set(option, values);
  return option;
}

/** An option's fixed values: commander's own choices, else ours; undefined when free text. */
export function valuesOf(option: Option): readonly string[] | undefined {
  return option.argChoices ?? VALUES.get(option);
}
