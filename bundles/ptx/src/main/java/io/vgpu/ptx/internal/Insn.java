package io.vgpu.ptx.internal;

/** One compiled instruction; {@link #exec} runs it for the lanes of {@code mask}. */
public abstract class Insn {
    /** Guard predicate register, or -1. */
    public int guard = -1;
    public boolean guardNegated;
    public int line;
    public String form;

    /** Executes for the lanes in mask (guard already applied). */
    public abstract void exec(Warp w, int mask);

    /** True for instructions that change control flow; they implement {@link #control}. */
    public boolean isControl() {
        return false;
    }

    /**
     * Control transfer: {@code group} is the scheduled lanes at {@code pc}, {@code mask} those whose
     * guard holds. Sets each lane's next pc (or its exited/waiting state).
     */
    public void control(Warp w, int group, int mask, int pc) {
        throw new IllegalStateException("not a control instruction");
    }

    @Override
    public String toString() {
        return form + " (PTX line " + line + ")";
    }
}
