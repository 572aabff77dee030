import type { QueuePreset } from './queue-preset.js';
import { riverPreset } from './jobs-river.js';
import { graphileWorkerPreset } from './jobs-graphile-worker.js';
import { pgBossPreset } from './jobs-pg-boss.js';
import { obanPreset } from './jobs-oban.js';

/**
 * Every job queue opsctl knows: adding one is its preset file, its tests and a line here.
 * The config's jobs.queue accepts exactly these names.
 */
export const QUEUE_PRESETS: readonly QueuePreset[] = [riverPreset, graphileWorkerPreset, pgBossPreset, obanPreset];

export const QUEUE_NAMES = QUEUE_PRESETS.map((p) => p.queue) as [string, ...string[]];

/** The preset of a name the config validated against QUEUE_NAMES. */
export function presetNamed(name: string): QueuePreset {
  const preset = QUEUE_PRESETS.find((p) => p.queue === name);
  if (!preset) throw new Error(`no queue preset named ${name}`);
  return preset;
}
