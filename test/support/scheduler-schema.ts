// The reference scheduler schema lives with the other reference DDL (the demo seeds it too).
export { SCHEDULER_SCHEMA_SQL } from '../../src/reference/scheduler.js';
