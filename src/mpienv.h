/* The MPI library's settings that h5batch chooses before MPI_Init, to cut start-up cost. */
#ifndef HB_MPIENV_H
#define HB_MPIENV_H

/* Not collective (every rank decides alike, from its host). Before MPI_Init: on a host
 * without a high-speed fabric device, and when neither the environment
 * (OMPI_MCA_pml, OMPI_MCA_mtl, OMPI_MCA_param_files) nor an Open MPI parameter file
 * chooses the transport (selects a PML or MTL, or excludes ob1; excluding others is no
 * choice), selects Open MPI's ob1 PML (shared memory and TCP), so that MPI_Init
 * does not probe for Omni-Path, TrueScale and libfabric hardware that is not there.
 * H5BATCH_MPI_DEFAULTS=0 leaves the environment alone. */
void hb_mpi_env_defaults(void);

#endif
