/**
 * Preloaded (`node -r`) into a server process to skew its clock: shifts `Date.now()`,
 * `new Date()` and `Date()` by CLOCK_SHIFT_MS (default +1 h), as on a host whose clock is wrong.
 * Timers are untouched. test/reservations.e2e-spec.ts uses it to show that the times of a hold
 * come from the database clock, not from the process.
 */
const SHIFT_MS = Number(process.env.CLOCK_SHIFT_MS ?? 3_600_000);
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);
const shiftedNow = () => realNow() + SHIFT_MS;

globalThis.Date = new Proxy(RealDate, {
  construct(target, args: unknown[], newTarget: () => unknown) {
    return Reflect.construct(target, args.length === 0 ? [shiftedNow()] : args, newTarget);
  },
  apply() {
    return new RealDate(shiftedNow()).toString();
  },
  get(target, property, receiver) {
    return property === 'now' ? shiftedNow : Reflect.get(target, property, receiver);
  },
});

// A module (not a script) for the type checker; never import it: it would skew the importer.
export {};
