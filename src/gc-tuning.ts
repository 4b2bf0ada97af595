import { setFlagsFromString } from 'node:v8';

/**
 * V8's allocation-site pretenuring off, before anything else is loaded (main.ts imports this
 * first). Under a steady purchase load V8 would, at some early scavenge that happened to find many
 * of a site's objects alive (e.g. Node's `process.nextTick` tick objects while a committed batch's
 * answers are written), decide that site's objects are long-lived and allocate them in old space
 * from then on. They are not: they die within the request, but as old-space objects they keep the
 * young request objects they point to alive through every scavenge, so those get promoted too
 * (about 6 MB per scavenge at 10,000 purchases/s, 10 ms scavenges instead of 1.5, a full
 * mark-compact every few seconds). Whether it happened was a coin toss per process start; with
 * this flag none of them is promoted. Measured in docs/design.md ("Garbage collection").
 */
setFlagsFromString('--no-allocation-site-pretenuring');
