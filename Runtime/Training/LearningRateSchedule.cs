namespace GraphCompiler.Runtime.Training;

/// <summary>The learning rate of each optimizer step (0-based): constant, or linear warmup to the peak over
/// <see cref="WarmupSteps"/> steps then linear decay to 0 at <see cref="TotalSteps"/> (GluonNLP's fine-tuning script:
/// step i of warmup uses peak·(i+1)/warmup; after it, peak·(total − i)/(total − warmup)). A pure function of the step, so
/// a resumed run gets the same rates.</summary>
public sealed record LearningRateSchedule(ScheduleKind Kind, double Peak, int TotalSteps, int WarmupSteps)
{
    public static LearningRateSchedule Create(ScheduleKind kind, double peak, int totalSteps, double warmupRatio) =>
        new(kind, peak, totalSteps, kind == ScheduleKind.Constant ? 0 : (int)Math.Floor(totalSteps * warmupRatio));

    public double At(int step)
    {
        if (Kind == ScheduleKind.Constant)
        {
            return Peak;
        }

        if (step < WarmupSteps)
        {
            return Peak * (step + 1) / WarmupSteps;
        }

        var decaySteps = TotalSteps - WarmupSteps;
        return decaySteps <= 0 ? Peak : Peak * Math.Max(0, TotalSteps - step) / decaySteps;
    }
}
