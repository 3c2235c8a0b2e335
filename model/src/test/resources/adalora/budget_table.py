# PEFT's RankAllocator.budget_schedule (peft/tuners/adalora/layer.py), tabulated for
# AdaLoraBudgetTest: one line per (schedule, step): init_bgt target_bgt tinit tfinal total deltaT step budget mask
# Regenerate: /usr/bin/python3 budget_table.py > budget_table.txt
SCHEDULES = [(96, 64, 10, 20, 100, 1), (48, 16, 0, 0, 37, 3), (28, 7, 5, 5, 50, 2), (1200, 400, 3, 7, 500, 10)]


def budget_schedule(init_bgt, target_bgt, tinit, tfinal, total_step, delta_t, step):
    if step <= tinit:
        return init_bgt, False
    elif step > total_step - tfinal:
        return target_bgt, True
    mul_coeff = 1 - (step - tinit) / (total_step - tfinal - tinit)
    budget = int((init_bgt - target_bgt) * (mul_coeff**3) + target_bgt)
    return budget, step % delta_t == 0


for s in SCHEDULES:
    for step in range(s[4] + 3):
        b, m = budget_schedule(*s, step)
        print(*s, step, b, int(m))
